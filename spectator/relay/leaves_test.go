package relay

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/anticheat/audit"
	"github.com/gsd-dev/gsd/wire"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/tlog"
)

// The range's root is the audit log's at every size: RFC 6962 hashing,
// with a tree of any shape.
func TestLeafRangeRootIsTheAuditLogsRootAtEverySize(t *testing.T) {
	l, err := audit.Open("arena", &audit.MemStore{})
	require.NoError(t, err)
	var r leafRange
	require.Equal(t, tlog.Hash{}, r.root())
	for s := uint64(1); s <= 140; s++ {
		w := treeEvent("arena", "p", s, int64(s)).Wire()
		require.NoError(t, l.Append(&w))
		r.add(audit.LeafHash(&w))
		cp, err := l.Checkpoint()
		require.NoError(t, err)
		require.Equal(t, cp.Root, r.root(), "size %d", s)
		require.LessOrEqual(t, len(r.edge), 8, "O(log n) hashes")
	}
}

// leafRelay runs a verifying relay of upstream, logging into the
// returned builder.
func leafRelay(t *testing.T, up string, v audit.VerifyingKey) (*Relay, string, func() string) {
	t.Helper()
	var mu sync.Mutex
	logs := &strings.Builder{}
	r, base := startRelay(t, up, "", func(c *Config) {
		c.AuditKeys, c.CheckpointInterval = []audit.VerifyingKey{v}, 5*time.Millisecond
		c.Logger = slog.New(slog.NewTextHandler(lockedWriter{&mu, logs}, nil))
	})
	return r, base, func() string {
		mu.Lock()
		defer mu.Unlock()
		return logs.String()
	}
}

// openEvents opens base's event stream of arena from seq 1 and reads it
// in the background until it ends (the relay drops its upstream) or the
// test does.
func openEvents(t *testing.T, base string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/worlds/arena/events?from=1", nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
		}
	}()
	t.Cleanup(func() {
		cancel()
		resp.Body.Close()
		<-done
	})
}

// followErr returns the error r's follow of arena ended with (nil: none,
// or it runs).
func followErr(r *Relay) error {
	r.mu.Lock()
	f := r.follows["arena"]
	r.mu.Unlock()
	if f == nil {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// retold is tr's event of seq sent as seq at, x set to x, as a line.
func retold(t *testing.T, at uint64, x int64) string {
	t.Helper()
	b, err := json.Marshal(treeEvent("arena", "p", at, x))
	require.NoError(t, err)
	return string(b) + "\n"
}

// An upstream whose stream alters, drops, inserts or reorders one event
// of the signed history is dropped with reason leaves, whether the
// checkpoint comes before the events (compared when the range reaches
// it), at their size, or after more of them (the consistency proof to
// the range does not hold); the honest stream verifies.
func TestARelayDropsAnUpstreamWhoseEventsAreNotTheSignedLeaves(t *testing.T) {
	k, v := auditKey(t, "gsd-audit")
	tr := newTree(t, "arena", "p")
	tr.grow(6)
	six := tr.signed(k)
	tr.grow(9) // the node's tree has more: proofs from 6 to the range's size hold
	honest := tr.lines[:6]
	edit := func(f func(ls []string) []string) []string { return f(append([]string(nil), honest...)) }
	streams := map[string][]string{
		"honest":        honest,
		"honest longer": tr.lines[:8], // proven by the upstream's proof from 6 to 8
		"altered": edit(func(ls []string) []string {
			ls[2] = retold(t, 3, 99)
			return ls
		}),
		"dropped": edit(func(ls []string) []string { return append(ls[:2], ls[3:]...) }), // seq 3 missing
		"inserted": edit(func(ls []string) []string {
			out := append(ls[:2:2], retold(t, 3, 42)) // a forged seq 3; the history shifted after it
			for s := uint64(3); s <= 6; s++ {
				out = append(out, retold(t, s+1, int64(s)))
			}
			return out
		}),
		"reordered": edit(func(ls []string) []string {
			ls[2], ls[3] = retold(t, 3, 4), retold(t, 4, 3) // 4's change applied before 3's
			return ls
		}),
	}
	for name, ls := range streams {
		for _, when := range []string{"before", "after"} {
			t.Run(name+"/checkpoint "+when, func(t *testing.T) {
				u, up := newUpstreamOf(t, tr, ls)
				if when == "before" {
					u.set(six)
				}
				r, base, logs := leafRelay(t, up, v)
				openEvents(t, base)
				if when == "after" {
					// The relay holds all it was sent (a stream cut short
					// by a refusal is not read here), then gets the note.
					var lastEv wire.Event
					require.NoError(t, json.Unmarshal([]byte(ls[len(ls)-1]), &lastEv))
					require.Eventually(t, func() bool {
						r.mu.Lock()
						f := r.follows["arena"]
						r.mu.Unlock()
						return f != nil && f.position() > lastEv.Seq
					}, 10*time.Second, time.Millisecond)
					u.set(six)
				}
				c := r.checkpoints
				if strings.HasPrefix(name, "honest") {
					require.Eventually(t, func() bool { return testutil.ToFloat64(c.leavesVerified) > 0 }, 10*time.Second, time.Millisecond)
					require.NoError(t, followErr(r))
					require.Zero(t, testutil.ToFloat64(c.failures.WithLabelValues(ReasonLeaves)))
					return
				}
				require.Eventually(t, func() bool { return followErr(r) != nil }, 10*time.Second, time.Millisecond)
				var ce *CheckpointError
				require.ErrorAs(t, followErr(r), &ce)
				require.Equal(t, ReasonLeaves, ce.Reason, "%v", ce)
				require.Equal(t, 1.0, testutil.ToFloat64(c.failures.WithLabelValues(ReasonLeaves)))
				require.Zero(t, testutil.ToFloat64(c.leavesVerified))
				require.Contains(t, logs(), "dropping it")
			})
		}
	}
}

// A follow whose upstream starts after seq 1 cannot build the tree: the
// relay says so, counts it, and goes on following; a filtered view's
// stream, which skips seqs and gets no checkpoint, is followed too.
func TestARelayThatCannotBuildTheTreeSaysSoAndGoesOn(t *testing.T) {
	k, v := auditKey(t, "gsd-audit")
	tr := newTree(t, "arena", "p")
	tr.grow(8)
	u, up := newUpstreamOf(t, tr, tr.lines[4:]) // seqs 5 to 8: the start was trimmed
	u.set(tr.signed(k))
	r, base, logs := leafRelay(t, up, v)
	readEvents(t, base, "", 1, 8)
	c := r.checkpoints
	require.Eventually(t, func() bool { return testutil.ToFloat64(c.leavesSkipped.WithLabelValues(skipLate)) == 1 }, 10*time.Second, time.Millisecond)
	require.Contains(t, logs(), "cannot check this follow's events")
	require.Contains(t, logs(), "starts at seq 5")
	require.Eventually(t, func() bool { return u.asked() > 3 }, 10*time.Second, time.Millisecond)
	require.NoError(t, followErr(r), "still following")
	require.Zero(t, testutil.ToFloat64(c.failures.WithLabelValues(ReasonLeaves)))
	require.Zero(t, testutil.ToFloat64(c.leavesVerified))

	// A view that skips seqs, without checkpoints.
	_, up = newUpstreamOf(t, tr, []string{tr.lines[0], tr.lines[1], tr.lines[3]})
	r, base, logs = leafRelay(t, up, v)
	readEvents(t, base, "", 1, 4)
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(r.checkpoints.leavesSkipped.WithLabelValues(skipGap)) == 1
	}, 10*time.Second, time.Millisecond)
	require.Contains(t, logs(), "the upstream skipped a seq")
	require.NoError(t, followErr(r))
}

func (u *upstream) asked() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.asks
}

// The checks' own rules: a checkpoint of fewer events waits for a round
// whose snapshot of the range holds it, a proof the upstream cannot give
// is no refusal, one already verified is not counted again, and a
// checkpoint of another incarnation stops the checks.
func TestLeafCheckWaitsForProofsAndStopsAtAnotherIncarnation(t *testing.T) {
	c, err := newCheckpoints([]audit.VerifyingKey{mustKey(t)}, prometheus.NewRegistry())
	require.NoError(t, err)
	tr := newTree(t, "arena", "p")
	tr.grow(4)
	l := newLeafCheck(c, "arena", slog.New(slog.DiscardHandler))
	for _, ln := range tr.lines {
		var w wire.Event
		require.NoError(t, json.Unmarshal([]byte(ln), &w))
		require.NoError(t, l.add(&w))
	}
	four, err := tr.log.Checkpoint()
	require.NoError(t, err)
	two := four
	two.Size, two.Root = 2, rootAt(t, tr, 2)
	down := func(int64, int64, uint64) (tlog.TreeProof, error) { return nil, fmt.Errorf("upstream down") }
	require.NoError(t, l.round(two, down), "no snapshot of the range yet: the next round")
	err = l.round(two, down)
	require.ErrorContains(t, err, "upstream down")
	require.NotErrorIs(t, err, ErrCheckpoint, "the next round asks again")
	require.NoError(t, l.round(two, tr.prove))
	require.Equal(t, 1.0, testutil.ToFloat64(c.leavesVerified))
	require.NoError(t, l.round(four, tr.prove))
	require.NoError(t, l.round(four, tr.prove), "verified already")
	require.Equal(t, 2.0, testutil.ToFloat64(c.leavesVerified))

	other := four
	other.Incarnation, other.Size = 7, 9
	require.NoError(t, l.round(other, tr.prove))
	require.Equal(t, 1.0, testutil.ToFloat64(c.leavesSkipped.WithLabelValues(skipIncarnation)))
	w := treeEvent("arena", "p", 5, 5).Wire()
	require.NoError(t, l.add(&w), "no longer checked")
	require.Equal(t, 2.0, testutil.ToFloat64(c.leavesVerified))
}

// A salted world's checkpoints (leaf 2) stop the checks: the relay
// cannot build its leaves without the salts.
func TestLeafCheckStopsAtASaltedWorldsCheckpoint(t *testing.T) {
	c, err := newCheckpoints([]audit.VerifyingKey{mustKey(t)}, prometheus.NewRegistry())
	require.NoError(t, err)
	tr := newTree(t, "arena", "p")
	tr.grow(2)
	l := newLeafCheck(c, "arena", slog.New(slog.DiscardHandler))
	for _, ln := range tr.lines {
		var w wire.Event
		require.NoError(t, json.Unmarshal([]byte(ln), &w))
		require.NoError(t, l.add(&w))
	}
	cp, err := tr.log.Checkpoint()
	require.NoError(t, err)
	cp.Leaf, cp.Root = wire.AuditLeafV2, tlog.Hash{1} // its root is not the v1 leaves'
	require.NoError(t, l.round(cp, tr.prove))
	require.Equal(t, 1.0, testutil.ToFloat64(c.leavesSkipped.WithLabelValues(skipSalted)))
	require.Equal(t, 0.0, testutil.ToFloat64(c.leavesVerified))
}

// A checkpoint the range has not reached waits for it, and newer ones
// do not replace it: a view delayed longer than a round gets there.
func TestLeafCheckComparesTheOldestCheckpointItHasNotReached(t *testing.T) {
	c, err := newCheckpoints([]audit.VerifyingKey{mustKey(t)}, prometheus.NewRegistry())
	require.NoError(t, err)
	tr := newTree(t, "arena", "p")
	l := newLeafCheck(c, "arena", slog.New(slog.DiscardHandler))
	var cps []audit.Checkpoint
	for n := int64(2); n <= 6; n += 2 {
		tr.grow(n)
		cp, err := tr.log.Checkpoint()
		require.NoError(t, err)
		cps = append(cps, cp)
		require.NoError(t, l.round(cp, tr.prove))
	}
	require.Zero(t, testutil.ToFloat64(c.leavesVerified))
	for i, ln := range tr.lines {
		var w wire.Event
		require.NoError(t, json.Unmarshal([]byte(ln), &w))
		require.NoError(t, l.add(&w))
		if i == 1 {
			require.Equal(t, 1.0, testutil.ToFloat64(c.leavesVerified), "at 2, the first one")
		}
	}
	require.Equal(t, 1.0, testutil.ToFloat64(c.leavesVerified), "4 and 6 came while 2 waited")
	require.NoError(t, l.round(cps[2], tr.prove))
	require.Equal(t, 2.0, testutil.ToFloat64(c.leavesVerified), "6, at the next round")
}

// After a seq the upstream skipped, the range before it is still
// checked, and a checkpoint that holds the skipped seq refuses the
// upstream.
func TestLeafCheckAfterAGapChecksWhatCameBeforeAndRefusesWhatCoversIt(t *testing.T) {
	c, err := newCheckpoints([]audit.VerifyingKey{mustKey(t)}, prometheus.NewRegistry())
	require.NoError(t, err)
	tr := newTree(t, "arena", "p")
	tr.grow(6)
	l := newLeafCheck(c, "arena", slog.New(slog.DiscardHandler))
	for _, i := range []int{0, 1, 2, 3, 5} { // seq 5 skipped
		var w wire.Event
		require.NoError(t, json.Unmarshal([]byte(tr.lines[i]), &w))
		require.NoError(t, l.add(&w))
	}
	require.Equal(t, 1.0, testutil.ToFloat64(c.leavesSkipped.WithLabelValues(skipGap)))
	three := audit.Checkpoint{Origin: "arena", Size: 3, Root: rootAt(t, tr, 3)}
	require.NoError(t, l.round(three, tr.prove), "the first round takes a snapshot")
	require.NoError(t, l.round(three, tr.prove))
	require.Equal(t, 1.0, testutil.ToFloat64(c.leavesVerified), "3 proven in the 4 before the gap")
	six, err := tr.log.Checkpoint()
	require.NoError(t, err)
	err = l.round(six, tr.prove)
	var ce *CheckpointError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, ReasonLeaves, ce.Reason)
	require.Contains(t, ce.Detail, "skipped seq 5")
	require.NoError(t, l.round(six, tr.prove), "refused once: the follow ends")
	require.Equal(t, 1.0, testutil.ToFloat64(c.failures.WithLabelValues(ReasonLeaves)))
}

// rootAt is tr's root at size n.
func rootAt(t *testing.T, tr *tree, n int64) tlog.Hash {
	t.Helper()
	var r leafRange
	for _, ln := range tr.lines[:n] {
		var w wire.Event
		require.NoError(t, json.Unmarshal([]byte(ln), &w))
		r.add(audit.LeafHash(&w))
	}
	return r.root()
}

func mustKey(t *testing.T) audit.VerifyingKey {
	_, v := auditKey(t, "gsd-audit")
	return v
}

// The streams a relay gets checkpoints with carry the node's leaves, and
// only those. A node gives a world's checkpoints to anyone when its rules
// restrict no field, and then cuts no event of any view: a public
// class's stream has the leaves of the node's own events (an admin's
// stream). In a world that restricts fields it gives them only to game
// servers, admins and the cluster secret (edge.Core.GuardHashes), whose
// events are whole: even a class that sees every field gets other
// players' client seqs zeroed, leaves a relay could not check.
func TestOnlyStreamsThatGetCheckpointsCarryTheNodesLeaves(t *testing.T) {
	n := startNode(t)
	n.do(t, http.MethodPost, "/v1/worlds", `{"id":"open","rules":{"fields":{"score":{"type":"int","policy":"counter"}}}}`, http.StatusCreated)
	leaves := func(b []byte) []tlog.Hash {
		var out []tlog.Hash
		for _, ln := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			var w wire.Event
			require.NoError(t, json.Unmarshal([]byte(ln), &w))
			out = append(out, audit.LeafHash(&w))
		}
		return out
	}
	for seq := 1; seq <= 3; seq++ {
		n.do(t, http.MethodPost, "/v1/worlds/open/actions", fmt.Sprintf(`{"seq":%d,"ops":[{"op":"incr","entity":"e%d","field":"score","by":1}]}`, seq, seq), http.StatusOK)
	}
	all := leaves(readEventsWorld(t, n.url, n.admin, "open", 1, 3))
	require.Len(t, all, 3)
	require.Equal(t, all, leaves(readEventsWorld(t, n.url, token(t, "relay", ""), "open", 1, 3)))

	n.act(t, "e1", 1, "a")
	n.act(t, "e2", 0, "b")
	n.seq++
	n.do(t, http.MethodPost, "/v1/worlds/arena/actions", fmt.Sprintf(`{"seq":%d,"ops":[{"op":"delete","entity":"e2"}]}`, n.seq), http.StatusOK)
	last := n.act(t, "e3", 3, "c")
	whole := leaves(readEvents(t, n.url, n.admin, 1, last))
	require.Len(t, whole, int(last))
	ref := leaves(readEventsQ(t, n.url, token(t, "relay", "ref"), "&view=ref", 1, last))
	require.Len(t, ref, int(last), "the ref class sees every field")
	require.NotEqual(t, whole, ref, "but not the admin's client seqs")
}
