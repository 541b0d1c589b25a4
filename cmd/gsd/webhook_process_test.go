//go:build linux

package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/client"
	"github.com/gsd-dev/gsd/sink/webhook"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// hookReceiver is a studio's webhook endpoint: it checks each batch's
// signature and keeps the events by (world, incarnation, seq), the key
// docs/EVENTS.md tells a receiver to de-duplicate on. It can be killed
// (its listener and every connection closed) and started again on the
// same address.
type hookReceiver struct {
	t      *testing.T
	secret []byte
	addr   string

	mu         sync.Mutex
	srv        *http.Server
	events     map[string]map[int64]map[uint64]wire.Event // world → incarnation → seq
	deliveries int                                        // events received, repeats included
	problems   []string
}

func newHookReceiver(t *testing.T, secret string) *hookReceiver {
	r := &hookReceiver{t: t, secret: []byte(secret), events: map[string]map[int64]map[uint64]wire.Event{}}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	r.addr = l.Addr().String()
	r.serve(l)
	t.Cleanup(r.kill)
	return r
}

func (r *hookReceiver) url() string { return "http://" + r.addr + "/hook" }

func (r *hookReceiver) serve(l net.Listener) {
	srv := &http.Server{Handler: http.HandlerFunc(r.handle), ReadHeaderTimeout: 10 * time.Second}
	r.mu.Lock()
	r.srv = srv
	r.mu.Unlock()
	go func() { _ = srv.Serve(l) }()
}

// kill closes the listener and every open connection at once, as a
// receiver that dies does.
func (r *hookReceiver) kill() {
	r.mu.Lock()
	srv := r.srv
	r.srv = nil
	r.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// restart listens on the same address again (retried: the port may sit
// in the kernel for a moment after the close).
func (r *hookReceiver) restart() {
	var l net.Listener
	require.Eventually(r.t, func() bool {
		var err error
		l, err = net.Listen("tcp", r.addr)
		return err == nil
	}, 30*time.Second, 20*time.Millisecond, "listen again on %s", r.addr)
	r.serve(l)
}

func (r *hookReceiver) handle(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	var b webhook.Batch
	switch {
	case err != nil:
		w.WriteHeader(http.StatusBadRequest)
		return
	case !webhook.Verify(r.secret, body, req.Header.Get(webhook.HeaderSignature)):
		r.problems = append(r.problems, "bad signature")
		w.WriteHeader(http.StatusUnauthorized)
		return
	case json.Unmarshal(body, &b) != nil:
		r.problems = append(r.problems, "undecodable batch")
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if len(b.Events) == 0 || b.Events[0].Seq != b.First || b.Events[len(b.Events)-1].Seq != b.Last || b.Last-b.First+1 != uint64(len(b.Events)) {
		r.problems = append(r.problems, "a batch whose events are not first..last")
	}
	incs := r.events[b.World]
	if incs == nil {
		incs = map[int64]map[uint64]wire.Event{}
		r.events[b.World] = incs
	}
	seqs := incs[b.Incarnation]
	if seqs == nil {
		seqs = map[uint64]wire.Event{}
		incs[b.Incarnation] = seqs
	}
	for _, ev := range b.Events {
		if old, ok := seqs[ev.Seq]; ok {
			a, _ := json.Marshal(old)
			c, _ := json.Marshal(ev)
			if string(a) != string(c) {
				r.problems = append(r.problems, "two different events at one (world, incarnation, seq)")
			}
		}
		seqs[ev.Seq] = ev
		r.deliveries++
	}
}

// held returns how many distinct events of world the receiver holds,
// over every incarnation.
func (r *hookReceiver) held(world string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, seqs := range r.events[world] {
		n += len(seqs)
	}
	return n
}

// The must-show for the webhook over real processes: kill the
// receiver mid-stream, SIGKILL the exporting gsd while it is behind,
// restart both, and the
// receiver's mirror (de-duplicated by world, incarnation and seq as
// docs/EVENTS.md says) equals the world: no event missing, none that the
// world does not hold, one incarnation.
func TestProcessClusterWebhookSurvivesLeaderAndReceiverKills(t *testing.T) {
	if testing.Short() {
		t.Skip("process cluster test in -short mode")
	}
	secret := "a-webhook-secret-for-the-process-test"
	secretFile := filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.WriteFile(secretFile, []byte(secret+"\n"), 0o600))
	rcv := newHookReceiver(t, secret)
	hook := []string{"--webhook-url", rcv.url(), "--webhook-secret-file", secretFile, "--export-positions-every", "20"}

	pc := newProcCluster(t)
	n1 := pc.add("n1", hook...)
	n2 := pc.add("n2", append(hook, "--join", n1.http)...)
	n3 := pc.add("n3", append(hook, "--join", n2.http+","+n1.http)...)
	nodes := []*proc{n1, n2, n3}
	pc.start(n1, false)
	pc.waitStatus(n1, "leads", func(s client.Status) bool { return s.State == "leader" && s.LeaderHTTP != "" })
	pc.start(n2, false)
	pc.start(n3, false)
	for _, p := range nodes {
		pc.waitStatus(p, "sees three voters and a leader", func(s client.Status) bool { return len(s.Servers) == 3 && s.Leader != "" })
	}
	// Until every joined node has reported what it reads, the version
	// gate refuses the replicated position's writes (a new leader would
	// then start over at seq 1, which hides a resume that skips): wait.
	for _, p := range nodes {
		pc.waitStatus(p, "lists every node's versions", func(s client.Status) bool {
			for _, n := range s.Nodes {
				if n.Versions != s.Versions {
					return false
				}
			}
			return len(s.Nodes) == 3
		})
	}
	cl := client.New([]string{n1.http, n2.http, n3.http}, client.WithBackoff(10*time.Millisecond, 250*time.Millisecond), client.WithAttemptTimeout(5*time.Second))
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	require.NoError(t, cl.CreateWorld(ctx, "arena", wire.Rules{}))

	acked, stopWriter := arenaWriter(t, ctx, cl)
	progress := func(what string) {
		t.Helper()
		target := rcv.held("arena") + 50
		require.Eventually(t, func() bool { return rcv.held("arena") >= target }, 2*time.Minute, 20*time.Millisecond, what)
	}

	progress("the export starts")
	// The receiver dies first, so the exporting leader falls behind; then
	// that leader is SIGKILLed with events it never delivered: the new
	// leader must send them from the replicated position, not from the
	// world's head.
	rcv.kill()
	at := acked.Load()
	require.Eventually(t, func() bool { return acked.Load() >= at+50 }, 2*time.Minute, 20*time.Millisecond, "the game goes on without its receiver")
	st, err := cl.Status(ctx)
	require.NoError(t, err)
	var leader *proc
	for _, p := range nodes {
		if p.id == st.Leader {
			leader = p
		}
	}
	require.NotNil(t, leader)
	pc.kill(leader) // SIGKILL the node that exports, mid-backlog
	at = acked.Load()
	require.Eventually(t, func() bool { return acked.Load() >= at+20 }, 2*time.Minute, 20*time.Millisecond, "a new leader takes actions")
	rcv.restart()
	progress("the new leader's export catches up after the receiver restarts")

	pc.start(leader, true)
	pc.waitStatus(leader, "rejoined", func(s client.Status) bool { return s.Leader != "" && len(s.Servers) == 3 })
	stopWriter()

	// The world's events as the cluster serves them, once every node has
	// applied the same head.
	var head, inc uint64
	require.Eventually(t, func() bool {
		seqs := map[uint64]bool{}
		for _, p := range nodes {
			c := p.client()
			ws, err := c.Worlds(ctx)
			c.Close()
			if err != nil {
				return false
			}
			for _, w := range ws {
				if w.ID == "arena" {
					seqs[w.Seq] = true
					head, inc = w.Seq, w.Incarnation
				}
			}
		}
		return len(seqs) == 1
	}, time.Minute, 20*time.Millisecond, "nodes agree on the head")
	require.Eventually(t, func() bool { return rcv.held("arena") >= int(head) }, 2*time.Minute, 20*time.Millisecond, "the receiver holds seq 1..%d", head)
	events := arenaEvents(t, ctx, cl, head)
	require.Len(t, events, int(head))

	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	require.Empty(t, rcv.problems)
	require.Len(t, rcv.events["arena"], 1, "one incarnation of arena")
	mirror := rcv.events["arena"][int64(inc)]
	require.NotNil(t, mirror, "the batches name the incarnation GET /v1/worlds shows (%d)", inc)
	require.Len(t, mirror, int(head), "events 1..%d, none past the head", head)
	for _, ev := range events {
		got, ok := mirror[ev.Seq]
		require.True(t, ok, "event %d missing", ev.Seq)
		want, err := json.Marshal(ev)
		require.NoError(t, err)
		have, err := json.Marshal(got)
		require.NoError(t, err)
		require.JSONEq(t, string(want), string(have), "event %d", ev.Seq)
	}
	for _, w := range []string{"gsd.sinks"} {
		require.Empty(t, rcv.events[w], "gsd's own world %s is not exported", w)
	}
	t.Logf("mirrored %d events in %d deliveries (at least once: %d repeats); %d actions acknowledged", head, rcv.deliveries, rcv.deliveries-int(head), acked.Load())
}
