package relay

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/anticheat/audit"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// auditKey returns a new audit key pair named name.
func auditKey(t *testing.T, name string) (audit.SigningKey, audit.VerifyingKey) {
	t.Helper()
	priv, pub, err := audit.GenerateKey(name)
	require.NoError(t, err)
	s, err := audit.ParseSigningKey(priv)
	require.NoError(t, err)
	v, err := audit.ParseVerifyingKey(pub)
	require.NoError(t, err)
	return s, v
}

// tree is a world's audit log in memory and its events' lines; tag
// makes its events differ from another tree's (a fork).
type tree struct {
	t     *testing.T
	log   *audit.Log
	tag   string
	lines []string // the event stream's line of each seq, from 1
}

func newTree(t *testing.T, world, tag string) *tree {
	l, err := audit.Open(world, &audit.MemStore{})
	require.NoError(t, err)
	return &tree{t: t, log: l, tag: tag}
}

// grow logs events up to size n: the event of seq s sets e1.x to s.
func (tr *tree) grow(n int64) {
	for s := tr.log.Size() + 1; s <= n; s++ {
		ev := treeEvent(tr.log.World(), tr.tag, uint64(s), s)
		w := ev.Wire()
		require.NoError(tr.t, tr.log.Append(&w))
		b, err := json.Marshal(ev)
		require.NoError(tr.t, err)
		tr.lines = append(tr.lines, string(b)+"\n")
	}
}

// treeEvent is the event of seq that player sets e1.x to x with.
func treeEvent(world, player string, seq uint64, x int64) *fsm.Event {
	return &fsm.Event{World: world, Seq: seq, Index: seq + 10, Time: time.Now().UnixNano(), Player: player,
		Status: fsm.StatusApplied, Changes: []fsm.Change{{Entity: "e1", Field: "x", Op: fsm.OpSet, Value: fsm.Int(x), Version: seq}}}
}

// signed returns the note of tr's checkpoint at its size now, signed by k.
func (tr *tree) signed(k note.Signer) []byte {
	cp, err := tr.log.Checkpoint()
	require.NoError(tr.t, err)
	msg, err := audit.SignCheckpoint(cp, k)
	require.NoError(tr.t, err)
	return msg
}

// prove is a proveFunc from tr.
func (tr *tree) prove(from, to int64, _ uint64) (tlog.TreeProof, error) {
	return tr.log.ProveConsistency(from, to)
}

func newVerifier(t *testing.T, keys ...audit.VerifyingKey) *checkpoints {
	t.Helper()
	c, err := newCheckpoints(keys, prometheus.NewRegistry())
	require.NoError(t, err)
	return c
}

// refused requires err to be a refusal for reason, counted once more.
func refused(t *testing.T, c *checkpoints, err error, reason string) {
	t.Helper()
	var ce *CheckpointError
	require.ErrorAs(t, err, &ce)
	require.ErrorIs(t, err, ErrCheckpoint)
	require.Equal(t, reason, ce.Reason, "%v", err)
	require.Equal(t, "arena", ce.World)
	require.Contains(t, err.Error(), reason)
}

func TestVerifierAcceptsAnHonestGrowingLogAndRefusesEachTampering(t *testing.T) {
	k, v := auditKey(t, "gsd-audit")
	other, _ := auditKey(t, "gsd-audit") // the same name, another key: another key id
	c := newVerifier(t, v)
	honest := newTree(t, "arena", "p")

	honest.grow(2)
	two := honest.signed(k)
	require.NoError(t, c.check("arena", two, honest.prove))
	honest.grow(5)
	five := honest.signed(k)
	require.NoError(t, c.check("arena", five, honest.prove), "grew, and the proof ties it to 2")
	require.NoError(t, c.check("arena", five, honest.prove), "the same again: fine")
	require.Nil(t, c.at("arena", 1))
	require.Equal(t, two, c.at("arena", 4), "never one of more events than asked")
	require.Equal(t, five, c.at("arena", 9))

	// A forged signature: the text changed under the key's signature.
	forged := []byte(strings.Replace(string(five), "\n5\n", "\n6\n", 1))
	refused(t, c, c.check("arena", forged, honest.prove), ReasonSignature)
	// Signed by a key the relay does not know.
	refused(t, c, c.check("arena", honest.signed(other), honest.prove), ReasonUnknownKey)
	refused(t, c, c.check("arena", []byte("not a note"), honest.prove), ReasonMalformed)
	// Another world's checkpoint, validly signed.
	elsewhere := newTree(t, "lobby", "p")
	elsewhere.grow(9)
	refused(t, c, c.check("arena", elsewhere.signed(k), honest.prove), ReasonOrigin)
	// Rolled back: an older checkpoint (replayed) after the one accepted.
	refused(t, c, c.check("arena", two, honest.prove), ReasonRollback)
	// A fork: the same size, another history.
	fork := newTree(t, "arena", "q")
	fork.grow(5)
	refused(t, c, c.check("arena", fork.signed(k), fork.prove), ReasonFork)
	// A larger fork: its proof does not tie it to what was accepted.
	fork.grow(8)
	refused(t, c, c.check("arena", fork.signed(k), fork.prove), ReasonInconsistent)
	require.Equal(t, five, c.at("arena", 9), "nothing refused was taken")

	for reason, n := range map[string]float64{ReasonSignature: 1, ReasonUnknownKey: 1, ReasonMalformed: 1,
		ReasonOrigin: 1, ReasonRollback: 1, ReasonFork: 1, ReasonInconsistent: 1} {
		require.Equal(t, n, testutil.ToFloat64(c.failures.WithLabelValues(reason)), reason)
	}
}

func TestVerifierWaitsForAProofItCannotFetchAndFollowsANewIncarnation(t *testing.T) {
	k, v := auditKey(t, "gsd-audit")
	c := newVerifier(t, v)
	honest := newTree(t, "arena", "p")
	honest.grow(3)
	three := honest.signed(k)
	require.NoError(t, c.check("arena", three, honest.prove))
	honest.grow(4)
	down := func(int64, int64, uint64) (tlog.TreeProof, error) { return nil, errors.New("upstream down") }
	err := c.check("arena", honest.signed(k), down)
	require.Error(t, err)
	require.NotErrorIs(t, err, ErrCheckpoint, "not the upstream's lie: the next round tries again")
	require.Equal(t, three, c.at("arena", 9))

	// The world created again: a new tree, from its incarnation on.
	inc := newTree(t, "arena", "r")
	inc.grow(1)
	cp, err := inc.log.Checkpoint()
	require.NoError(t, err)
	cp.Incarnation = 7
	newer, err := audit.SignCheckpoint(cp, k)
	require.NoError(t, err)
	require.NoError(t, c.check("arena", newer, inc.prove))
	require.Equal(t, newer, c.at("arena", 9))
	refused(t, c, c.check("arena", three, honest.prove), ReasonRollback) // incarnation 0 after 7

	_, err = newCheckpoints([]audit.VerifyingKey{{}}, prometheus.NewRegistry())
	require.ErrorContains(t, err, "AuditKeys[0]")
}

func TestVerifierKeepsTheNewestAccepted(t *testing.T) {
	k, v := auditKey(t, "gsd-audit")
	c := newVerifier(t, v)
	tr := newTree(t, "arena", "p")
	for n := int64(1); n <= keep+1; n++ {
		tr.grow(n)
		require.NoError(t, c.check("arena", tr.signed(k), tr.prove))
	}
	require.Nil(t, c.at("arena", 1), "the oldest went")
	require.NotNil(t, c.at("arena", 2))
}

// upstream is a node as a verifying relay sees it: a world's event
// stream, and its audit routes over a tree whose checkpoint the test
// sets.
type upstream struct {
	t    *testing.T
	tr   *tree
	mu   sync.Mutex
	note []byte
	asks int // checkpoint requests
}

func newUpstream(t *testing.T, tr *tree, events int) (*upstream, string) {
	return newUpstreamOf(t, tr, tr.lines[:events])
}

// newUpstreamOf is newUpstream whose event stream sends lines; until a
// note is set it has no checkpoint to give.
func newUpstreamOf(t *testing.T, tr *tree, lines []string) (*upstream, string) {
	u := &upstream{t: t, tr: tr}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/worlds/arena/events", hang(lines...))
	mux.HandleFunc("GET /v1/worlds/arena/audit/checkpoint", func(w http.ResponseWriter, _ *http.Request) {
		u.mu.Lock()
		defer u.mu.Unlock()
		u.asks++
		if u.note == nil {
			http.Error(w, `{"code":"no_audit_key","error":"no checkpoint yet"}`, http.StatusNotFound)
			return
		}
		_, _ = w.Write(u.note)
	})
	mux.HandleFunc("GET /v1/worlds/arena/audit/consistency", func(w http.ResponseWriter, r *http.Request) {
		from, _ := strconv.ParseInt(r.URL.Query().Get("from"), 10, 64)
		to, _ := strconv.ParseInt(r.URL.Query().Get("to"), 10, 64)
		p, err := tr.log.ProveConsistency(from, to)
		if err != nil {
			http.Error(w, `{"code":"beyond_log","error":"`+err.Error()+`"}`, http.StatusNotFound)
			return
		}
		hs := make([][]byte, len(p))
		for i := range p {
			hs[i] = p[i][:]
		}
		_ = json.NewEncoder(w).Encode(wire.AuditConsistency{World: "arena", From: from, To: to, Proof: hs})
	})
	ts := httptest.NewServer(mux)
	t.Cleanup(func() {
		ts.CloseClientConnections()
		ts.Close()
	})
	return u, ts.URL
}

func (u *upstream) set(msg []byte) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.note = msg
}

// getAt returns base's answer to GET path: its status and body.
func getAt(t *testing.T, base, path string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(base + path)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, b
}

// A chain of verifying relays over an honest node: each accepts the
// checkpoints, serves them to the next, and puts them in its keyframes.
func TestAChainOfRelaysVerifiesAnHonestUpstream(t *testing.T) {
	k, v := auditKey(t, "gsd-audit")
	tr := newTree(t, "arena", "p")
	tr.grow(3)
	u, up := newUpstream(t, tr, 3)
	u.set(tr.signed(k))
	verify := func(c *Config) { c.AuditKeys, c.CheckpointInterval = []audit.VerifyingKey{v}, 10*time.Millisecond }
	a, aURL := startRelay(t, up, "", verify)
	rb, bURL := startRelay(t, aURL, "", func(c *Config) {
		verify(c)
		c.Pipeline.KeyframeInterval = 10 * time.Millisecond
	})

	st, _ := getAt(t, aURL, "/v1/worlds/arena/audit/checkpoint")
	require.Equal(t, http.StatusNotFound, st, "not following the world yet")
	readEvents(t, bURL, "", 1, 3) // b follows a, which follows the node
	want := tr.signed(k)
	for _, base := range []string{aURL, bURL} {
		require.Eventually(t, func() bool {
			st, b := getAt(t, base, "/v1/worlds/arena/audit/checkpoint")
			return st == http.StatusOK && string(b) == string(want)
		}, 10*time.Second, 5*time.Millisecond, base)
	}
	// Each checks the events it received against the tree's leaves: b
	// serves a's lines as received, with a's checkpoint.
	for _, r := range []*Relay{a, rb} {
		require.Eventually(t, func() bool { return testutil.ToFloat64(r.checkpoints.leavesVerified) > 0 }, 10*time.Second, 5*time.Millisecond)
	}

	// The tree grows (events the relays have not been sent yet): a
	// accepts it by a proof, but serves only what is at or before what it
	// received; b, asking a, keeps the older one.
	tr.grow(6)
	six := tr.signed(k)
	u.set(six)
	require.Eventually(t, func() bool { return string(a.checkpoints.at("arena", 6)) == string(six) }, 10*time.Second, 5*time.Millisecond)
	st, b := getAt(t, aURL, "/v1/worlds/arena/audit/checkpoint")
	require.Equal(t, http.StatusOK, st)
	require.Equal(t, string(want), string(b), "never a checkpoint past the events received")
	st, b = getAt(t, bURL, "/v1/worlds/arena/audit/consistency?from=3&to=6")
	require.Equal(t, http.StatusOK, st, "%s", b)
	var ac wire.AuditConsistency
	require.NoError(t, json.Unmarshal(b, &ac))
	require.Equal(t, int64(6), ac.To)

	// b's watchers get the checkpoint in their keyframes. The first
	// watcher's keyframe comes before b's pipeline read the events (seq
	// 0: none); one joining later gets a keyframe at seq 3, with it.
	first := dial(t, bURL, "", "")
	require.Equal(t, uint64(3), watchState(t, first, 3).Seq)
	require.Eventually(t, func() bool {
		c := dial(t, bURL, "", "")
		defer c.CloseNow()
		_, msg, err := c.Read(context.Background())
		require.NoError(t, err)
		var kf wire.Keyframe
		require.NoError(t, json.Unmarshal(msg, &kf))
		require.Equal(t, wire.TypeKeyframe, kf.Type)
		if kf.Seq < 3 {
			require.Empty(t, kf.Checkpoint, "none at seq %d", kf.Seq)
			return false
		}
		require.Equal(t, string(want), kf.Checkpoint)
		return true
	}, 10*time.Second, 10*time.Millisecond)
	require.Zero(t, testutil.ToFloat64(a.checkpoints.failures.WithLabelValues(ReasonFork)))
}

// An upstream that sends a forked checkpoint is dropped: the follow ends
// (its viewers with it), the refusal is counted, and the next follow is
// checked against what was accepted before.
func TestARelayDropsAnUpstreamThatSendsAForkedCheckpoint(t *testing.T) {
	k, v := auditKey(t, "gsd-audit")
	tr := newTree(t, "arena", "p")
	tr.grow(3)
	u, up := newUpstream(t, tr, 3)
	u.set(tr.signed(k))
	r, base := startRelay(t, up, "", func(c *Config) {
		c.AuditKeys, c.CheckpointInterval = []audit.VerifyingKey{v}, 10*time.Millisecond
	})
	readEvents(t, base, "", 1, 3)
	require.Eventually(t, func() bool { return r.checkpoints.at("arena", 3) != nil }, 10*time.Second, 5*time.Millisecond)

	fork := newTree(t, "arena", "q")
	fork.grow(3)
	u.set(fork.signed(k))
	require.Eventually(t, func() bool {
		r.mu.Lock()
		f := r.follows["arena"]
		r.mu.Unlock()
		return f != nil && f.failed()
	}, 10*time.Second, 5*time.Millisecond)
	require.Equal(t, 1.0, testutil.ToFloat64(r.checkpoints.failures.WithLabelValues(ReasonFork)))
	r.mu.Lock()
	err := r.follows["arena"].err
	r.mu.Unlock()
	require.ErrorIs(t, err, ErrCheckpoint)
	st, _ := status(err)
	require.Equal(t, http.StatusBadGateway, st)

	// A relay without keys verifies nothing and serves no audit routes.
	_, plain := startRelay(t, up, "", nil)
	st, _ = getAt(t, plain, "/v1/worlds/arena/audit/checkpoint")
	require.Equal(t, http.StatusNotFound, st)
}

// An upstream that gives no checkpoint (no audit key, or a view that
// hides fields) is followed as before; one whose proof is not a proof is
// not accepted from, and the next round asks again.
func TestARelayGoesOnWithoutCheckpointsAndAcceptsNothingUnproven(t *testing.T) {
	k, v := auditKey(t, "gsd-audit")
	tr := newTree(t, "arena", "p")
	tr.grow(2)
	var mu sync.Mutex
	note, proof := tr.signed(k), `{"proof":["c2hvcnQ="]}`
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/worlds/arena/events", hang(tr.lines...))
	mux.HandleFunc("GET /v1/worlds/arena/audit/checkpoint", func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if note == nil {
			http.Error(w, `{"code":"no_audit_key","error":"this node holds no audit key"}`, http.StatusNotFound)
			return
		}
		_, _ = w.Write(note)
	})
	mux.HandleFunc("GET /v1/worlds/arena/audit/consistency", func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		_, _ = w.Write([]byte(proof))
	})
	ts := httptest.NewServer(mux)
	t.Cleanup(func() {
		ts.CloseClientConnections()
		ts.Close()
	})
	logs := &strings.Builder{}
	var logMu sync.Mutex
	r, base := startRelay(t, ts.URL, "", func(c *Config) {
		c.AuditKeys, c.CheckpointInterval = []audit.VerifyingKey{v}, 5*time.Millisecond
		c.Logger = slog.New(slog.NewTextHandler(lockedWriter{&logMu, logs}, nil))
	})
	readEvents(t, base, "", 1, 2)
	require.Eventually(t, func() bool { return r.checkpoints.at("arena", 2) != nil }, 10*time.Second, 5*time.Millisecond)

	// The node grows its tree but answers a proof of the wrong size, then
	// none, then no checkpoint at all: nothing is accepted or refused.
	tr.grow(4)
	mu.Lock()
	note = tr.signed(k)
	mu.Unlock()
	require.Eventually(t, func() bool {
		logMu.Lock()
		defer logMu.Unlock()
		return strings.Contains(logs.String(), "no audit checkpoint verified")
	}, 10*time.Second, 5*time.Millisecond)
	mu.Lock()
	proof = `not json`
	mu.Unlock()
	st, b := getAt(t, base, "/v1/worlds/arena/audit/consistency?from=2&to=4")
	require.Equal(t, http.StatusOK, st, "passed on as the upstream said it: the reader checks it")
	require.Equal(t, "not json", string(b))
	mu.Lock()
	note = nil
	mu.Unlock()
	st, b = getAt(t, base, "/v1/worlds/lobby/audit/consistency?from=2&to=4")
	require.Equal(t, http.StatusBadGateway, st, "an upstream's refusal without an error body: %s", b)
	r.mu.Lock()
	f := r.follows["arena"]
	r.mu.Unlock()
	require.False(t, f.failed(), "still following")
	require.Equal(t, int64(2), sizeOfNote(t, r.checkpoints.at("arena", 9), v))
	for _, reason := range []string{ReasonInconsistent, ReasonMalformed} {
		require.Zero(t, testutil.ToFloat64(r.checkpoints.failures.WithLabelValues(reason)), reason)
	}
}

// lockedWriter is a log sink safe for the relay's goroutines.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func sizeOfNote(t *testing.T, msg []byte, v audit.VerifyingKey) int64 {
	t.Helper()
	cp, _, err := audit.OpenCheckpoint(msg, v)
	require.NoError(t, err)
	return cp.Size
}
