//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/client"
	"github.com/gsd-dev/gsd/internal/testbin"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// proc is one gsd process.
type proc struct {
	id, dir, http, raft string
	args                []string
	logPath             string
	cmd                 *exec.Cmd
	exited              chan struct{}
}

// procCluster starts and stops gsd processes for one test.
type procCluster struct {
	t        *testing.T
	bin      string
	coverDir string
	procs    []*proc
}

func newProcCluster(t *testing.T) *procCluster {
	// A coverage-instrumented binary, so what the processes run counts.
	c := &procCluster{t: t, bin: testbin.GSD(t), coverDir: testbin.CoverDir(t)}
	t.Cleanup(func() {
		for _, p := range c.procs {
			c.stop(p)
		}
		if t.Failed() {
			for _, p := range c.procs {
				b, _ := os.ReadFile(p.logPath)
				lines := strings.Split(string(b), "\n")
				t.Logf("---- log of %s (last lines) ----\n%s", p.id, strings.Join(lines[max(0, len(lines)-60):], "\n"))
			}
		}
	})
	return c
}

// add defines node id on fresh ports with its own data dir.
func (c *procCluster) add(id string, extra ...string) *proc {
	p := &proc{id: id, dir: filepath.Join(c.t.TempDir(), id), http: freeAddr(c.t), raft: freeAddr(c.t)}
	p.logPath = filepath.Join(c.t.TempDir(), id+".log")
	p.args = append([]string{"--id", id, "--data-dir", p.dir, "--http-addr", p.http, "--raft-addr", p.raft,
		"--heartbeat-timeout", "300ms", "--election-timeout", "300ms", "--shutdown-timeout", "10s"}, extra...)
	c.procs = append(c.procs, p)
	return p
}

// start runs p with its args (minus --join when withoutJoin).
func (c *procCluster) start(p *proc, withoutJoin bool) {
	args := p.args
	if withoutJoin {
		args = nil
		for i := 0; i < len(p.args); i++ {
			if p.args[i] == "--join" {
				i++
				continue
			}
			args = append(args, p.args[i])
		}
	}
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	require.NoError(c.t, err)
	defer logf.Close()
	cmd := exec.Command(c.bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), "GOCOVERDIR="+c.coverDir)
	// Own process group (to signal it whole), and die with the test.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	require.NoError(c.t, cmd.Start())
	p.cmd = cmd
	p.exited = make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(p.exited)
	}()
}

func (p *proc) running() bool {
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// kill SIGKILLs p's process group and waits for it.
func (c *procCluster) kill(p *proc) {
	if !p.running() {
		return
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.exited
}

// stop SIGTERMs p (a graceful shutdown that also writes coverage), then
// SIGKILLs it if it hangs.
func (c *procCluster) stop(p *proc) {
	if !p.running() {
		return
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		c.t.Errorf("%s ignored SIGTERM; killing it", p.id)
		c.kill(p)
	}
}

func (p *proc) client() *client.Client {
	return client.New([]string{p.http}, client.WithBackoff(10*time.Millisecond, 200*time.Millisecond), client.WithAttemptTimeout(5*time.Second))
}

// waitStatus polls p's own status until ok accepts it.
func (c *procCluster) waitStatus(p *proc, what string, ok func(client.Status) bool) client.Status {
	c.t.Helper()
	cl := p.client()
	defer cl.Close()
	var last client.Status
	var lastErr error
	deadline := time.Now().Add(90 * time.Second)
	for p.running() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		last, lastErr = cl.Status(ctx)
		cancel()
		if lastErr == nil && ok(last) {
			break
		}
		// The message names the last status polled (arguments to
		// require.Eventually would be evaluated before the first poll).
		require.True(c.t, time.Now().Before(deadline), "%s: %s; last %+v err %v", p.id, what, last, lastErr)
		time.Sleep(25 * time.Millisecond)
	}
	require.True(c.t, p.running(), "%s exited", p.id)
	return last
}

// opLog records what the writers were told.
type opLog struct {
	mu        sync.Mutex
	acked     map[string]int64  // counter entity -> acknowledged incrs
	unknown   map[string]int64  // counter entity -> incrs whose outcome stayed unknown
	events    map[string]uint64 // "player/seq" -> world seq of its acknowledged event
	doorSets  map[uint64]int64  // world seq -> value of an applied OCC set
	doorUnk   int
	conflicts int
	dups      int
	total     atomic.Int64
}

func TestProcessClusterKeepsAcknowledgedWritesAcrossLeaderKill(t *testing.T) {
	if testing.Short() {
		t.Skip("process cluster test in -short mode")
	}
	pc := newProcCluster(t)
	n1 := pc.add("n1")
	n2 := pc.add("n2", "--join", n1.http)
	n3 := pc.add("n3", "--join", n2.http+","+n1.http) // n2 forwards once it is a member
	nodes := []*proc{n1, n2, n3}

	pc.start(n1, false)
	pc.waitStatus(n1, "leads", func(s client.Status) bool { return s.State == "leader" && s.LeaderHTTP != "" })
	pc.start(n2, false)
	pc.start(n3, false)
	for _, p := range nodes {
		pc.waitStatus(p, "sees three voters and a leader", func(s client.Status) bool { return len(s.Servers) == 3 && s.Leader != "" })
	}

	cl := client.New([]string{n1.http, n2.http, n3.http}, client.WithBackoff(10*time.Millisecond, 250*time.Millisecond), client.WithAttemptTimeout(5*time.Second))
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rules := wire.Rules{Fields: map[string]wire.FieldRule{
		"n": {Type: "int", Policy: wire.PolicyCounter},
		"v": {Type: "int", Policy: wire.PolicyAuthoritative},
	}}
	require.NoError(t, cl.CreateWorld(ctx, "arena", rules))

	log := &opLog{acked: map[string]int64{}, unknown: map[string]int64{}, events: map[string]uint64{}, doorSets: map[uint64]int64{}}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	const writers = 8
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runWriter(ctx, t, cl, w, stop, log)
		}()
	}
	waitAcks := func(n int64) {
		t.Helper()
		target := log.total.Load() + n
		require.Eventually(t, func() bool { return log.total.Load() >= target || t.Failed() }, 3*time.Minute, 10*time.Millisecond)
		require.False(t, t.Failed())
	}

	waitAcks(150)
	st, err := cl.Status(ctx)
	require.NoError(t, err)
	var leader *proc
	for _, p := range nodes {
		if p.id == st.Leader {
			leader = p
		}
	}
	require.NotNil(t, leader, "leader %q", st.Leader)
	t.Logf("SIGKILL leader %s after %d acknowledged actions", leader.id, log.total.Load())
	pc.kill(leader)

	waitAcks(150) // the survivors elect a leader and the writers carry on
	pc.start(leader, true)
	pc.waitStatus(leader, "rejoined", func(s client.Status) bool { return s.Leader != "" && len(s.Servers) == 3 })
	waitAcks(150)
	close(stop)
	wg.Wait()
	require.False(t, t.Failed())
	t.Logf("acked=%d duplicates=%d occ-conflicts=%d unknown-incrs=%v unknown-sets=%d",
		log.total.Load(), log.dups, log.conflicts, log.unknown, log.doorUnk)

	// Every acknowledged incr applied exactly once: a linearizable read
	// after the failover sees exactly the acknowledged totals.
	for entity, acked := range log.acked {
		e, err := cl.Entity(ctx, "arena", entity, client.Linearizable)
		require.NoError(t, err)
		got, ok := e.Int("n")
		require.True(t, ok)
		require.GreaterOrEqual(t, got, acked, "%s lost acknowledged increments", entity)
		require.LessOrEqual(t, got, acked+log.unknown[entity], "%s applied increments more than once", entity)
	}
	// The last acknowledged OCC set is what a linearizable read sees.
	if log.doorUnk == 0 && len(log.doorSets) > 0 {
		var lastSeq uint64
		for seq := range log.doorSets {
			lastSeq = max(lastSeq, seq)
		}
		e, err := cl.Entity(ctx, "arena", "door", client.Linearizable)
		require.NoError(t, err)
		v, _ := e.Int("v")
		require.Equal(t, log.doorSets[lastSeq], v)
		require.Equal(t, lastSeq, e.Versions["v"])
	}

	// The event log holds each acknowledged action once, at the seq its
	// acknowledgement named, and no action twice.
	worlds, err := cl.Worlds(ctx)
	require.NoError(t, err)
	var head uint64
	for _, w := range worlds {
		if w.ID == "arena" {
			head = w.Seq
		}
	}
	// The answering node may lag the leader; the head is at least every ack.
	for _, seq := range log.events {
		head = max(head, seq)
	}
	seen := map[string]uint64{}
	done := errors.New("done")
	err = cl.Follow(ctx, "arena", 1, func(ev wire.Event) error {
		key := fmt.Sprintf("%s/%d", ev.Player, ev.ClientSeq)
		if prev, dup := seen[key]; dup {
			return fmt.Errorf("action %s has events at seqs %d and %d", key, prev, ev.Seq)
		}
		seen[key] = ev.Seq
		if ev.Seq >= head {
			return done
		}
		return nil
	})
	require.ErrorIs(t, err, done)
	for key, seq := range log.events {
		require.Equal(t, seq, seen[key], "event of acknowledged action %s", key)
	}

	// All replicas hold the same state at the same seq.
	hashes := map[string]client.HashPoint{}
	for _, p := range nodes {
		c := p.client()
		require.Eventually(t, func() bool {
			ws, err := c.Worlds(ctx)
			return err == nil && len(ws) == 1 && ws[0].Seq >= head
		}, time.Minute, 20*time.Millisecond, "%s catches up to seq %d", p.id, head)
		h, err := c.Hash(ctx, "arena", head)
		require.NoError(t, err, p.id)
		hashes[p.id] = h
		c.Close()
	}
	require.Equal(t, hashes["n1"], hashes["n2"])
	require.Equal(t, hashes["n1"], hashes["n3"])
	require.Equal(t, head, hashes["n1"].Seq)
}

// runWriter submits actions until stop: mostly increments of a counter
// shared by two writers, and every fourth action an OCC set of a field all
// writers contend on. Each action has a unique (player, seq); the client
// retries it with the same seq until it is acknowledged.
func runWriter(ctx context.Context, t *testing.T, cl *client.Client, w int, stop <-chan struct{}, log *opLog) {
	player := fmt.Sprintf("w%d", w)
	counter := fmt.Sprintf("c%d", w%4)
	for seq := uint64(1); ; seq++ {
		select {
		case <-stop:
			return
		default:
		}
		actx, cancel := context.WithTimeout(ctx, 90*time.Second)
		occ := seq%4 == 0
		var a client.ActionRequest
		value := int64(w)*1_000_000 + int64(seq)
		if occ {
			var version uint64
			e, err := cl.Entity(actx, "arena", "door", client.Linearizable)
			switch {
			case err == nil:
				version = e.Versions["v"]
			case client.Code(err) == client.CodeNotFound:
			default:
				cancel()
				t.Errorf("%s: read door: %v", player, err)
				return
			}
			a = client.ActionRequest{Player: player, Seq: seq, Ops: []wire.Op{client.ExpectVersion(client.Set("door", "v", wire.Int(value)), version)}}
		} else {
			a = client.ActionRequest{Player: player, Seq: seq, Priority: client.PriorityBulk, Ops: []wire.Op{client.Incr(counter, "n", 1)}}
		}
		ev, err := cl.Act(actx, "arena", a)
		cancel()
		log.mu.Lock()
		switch {
		case err == nil:
			log.events[fmt.Sprintf("%s/%d", player, seq)] = ev.Seq
			if ev.Duplicate {
				log.dups++
			}
			switch {
			case ev.Status == "applied" && occ:
				log.doorSets[ev.Seq] = value
			case ev.Status == "applied":
				log.acked[counter]++
			case ev.Status == "conflict" && occ:
				log.conflicts++
			default:
				t.Errorf("%s/%d: unexpected event %+v", player, seq, ev)
			}
			log.total.Add(1)
		case client.IsOutcomeUnknown(err):
			if occ {
				log.doorUnk++
			} else {
				log.unknown[counter]++
			}
		default:
			t.Errorf("%s/%d: %v", player, seq, err)
		}
		log.mu.Unlock()
		if t.Failed() {
			return
		}
	}
}
