package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/anticheat/audit"
	"github.com/gsd-dev/gsd/anticheat/audit/auditor"
	"github.com/gsd-dev/gsd/client"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/store"
	"github.com/gsd-dev/gsd/wire"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/tlog"
)

func TestAuditKeyFlagsAreChecked(t *testing.T) {
	priv, _, err := audit.GenerateKey("k")
	require.NoError(t, err)
	o := auditOptions{keyFiles: []string{writeFile(t, priv+"\n"), writeFile(t, priv)}, signInterval: time.Second}
	s, err := o.signers()
	require.NoError(t, err)
	require.Len(t, s, 2)

	for _, bad := range []auditOptions{
		{signInterval: -time.Second},
		{keyFiles: []string{filepath.Join(t.TempDir(), "missing.key")}, signInterval: time.Second},
		{keyFiles: []string{writeFile(t, "not a key")}, signInterval: time.Second},
	} {
		_, err := bad.signers()
		require.Error(t, err)
		require.ErrorAs(t, err, new(usageError))
	}
	code := run(context.Background(), []string{"--audit-key", filepath.Join(t.TempDir(), "missing.key")}, &syncBuffer{}, &syncBuffer{})
	require.NotZero(t, code)
}

// auditKey writes a new audit key "gsd-audit" to a file and returns its
// path and the key's verifier.
func auditKey(t *testing.T) (string, audit.VerifyingKey) {
	t.Helper()
	priv, pub, err := audit.GenerateKey("gsd-audit")
	require.NoError(t, err)
	v, err := audit.ParseVerifyingKey(pub)
	require.NoError(t, err)
	return writeFile(t, priv), v
}

// A node without a key keeps the trees and serves proofs; asking it for
// a signed checkpoint names the missing key.
func TestANodeWithoutAnAuditKeyServesProofsButSignsNothing(t *testing.T) {
	t.Parallel()
	n := startNode(t, "solo", t.TempDir())
	n.waitLeader(t)
	c := n.client(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, c.CreateWorld(ctx, "arena", wire.Rules{}))
	for seq := uint64(1); seq <= 3; seq++ {
		_, err := c.Act(ctx, "arena", incr("p1", seq, "e1", 1))
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool {
		p, err := c.AuditProof(ctx, "arena", 3, 3)
		return err == nil && p.Size == 3 && len(p.Proof) == 1 // leaf 3 of 3: its sibling is the root of leaves 1 and 2
	}, time.Minute, 10*time.Millisecond)
	_, err := c.AuditCheckpoint(ctx, "arena")
	require.ErrorContains(t, err, wire.CodeNoAuditKey)
	resp, err := http.Get("http://" + n.http + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	requireContains(t, string(b), "gsd_audit_worlds 1", "gsd_audit_worlds_stalled 0", "gsd_audit_events 3", "gsd_audit_checkpoints_signed_total 0",
		"gsd_audit_settled 1", "gsd_audit_groups_unsettled 0")
}

func TestAuditMetricsRegisterOnce(t *testing.T) {
	reg := prometheus.NewRegistry()
	aud, err := auditor.New(auditor.DefaultConfig(), storeSource{}, testTrees(t))
	require.NoError(t, err)
	require.NoError(t, registerAuditMetrics(reg, aud, &settling{}))
	require.ErrorContains(t, registerAuditMetrics(reg, aud, &settling{}), "audit metrics")
	// Not run: its source (a Settler) has not settled.
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`# HELP gsd_audit_settled 1 once the auditor trusts this node's world list (its groups replayed their logs; under a shard map, the map has shards); 0 while it follows and buries nothing.
# TYPE gsd_audit_settled gauge
gsd_audit_settled 0
`), "gsd_audit_settled"))
}

// Every replica builds the same tree: a follower's checkpoint equals the
// leader's at the same size, and a proof from one checks against the
// other's signed checkpoint.
func TestReplicasKeepTheSameAuditTree(t *testing.T) {
	t.Parallel()
	key, v := auditKey(t)
	n1 := startNode(t, "n1", t.TempDir(), "--audit-key", key)
	n1.waitLeader(t)
	n2 := startNode(t, "n2", t.TempDir(), "--audit-key", key, "--join", n1.http)
	n1.waitStatus(t, "has two voters", func(s client.Status) bool { return len(s.Servers) == 2 })
	n2.waitLeader(t)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c1, c2 := n1.client(t), n2.client(t)
	require.NoError(t, c2.CreateWorld(ctx, "arena", wire.Rules{}))
	evs := make([]wire.Event, 0, 30)
	for seq := uint64(1); seq <= 30; seq++ {
		evs = append(evs, actSure(ctx, t, c2, "arena", incr(fmt.Sprintf("p%d", seq%3), seq, "e1", int64(seq))))
	}
	signedAt := func(c *client.Client) audit.Checkpoint {
		var cp audit.Checkpoint
		require.Eventually(t, func() bool {
			msg, err := c.SignAuditCheckpoint(ctx, "arena")
			require.NoError(t, err)
			cp, _, err = audit.OpenCheckpoint(msg, v)
			require.NoError(t, err)
			return cp.Size == 30
		}, time.Minute, 10*time.Millisecond)
		return cp
	}
	cp1, cp2 := signedAt(c1), signedAt(c2)
	require.Equal(t, cp1, cp2)
	for _, seq := range []uint64{1, 17, 30} {
		p, err := c2.AuditProof(ctx, "arena", seq, 30)
		require.NoError(t, err)
		proof := make([]tlog.Hash, len(p.Proof))
		for i, h := range p.Proof {
			proof[i] = tlog.Hash(h)
		}
		ev := evs[seq-1]
		ev.Duplicate = false
		require.NoError(t, audit.CheckInclusion(cp1, &ev, proof))
	}
}

// A restarted node lists the worlds created since its last snapshot only
// once it replayed its log: its auditor waits for that before it buries
// the trees of worlds it no longer holds, so a live world gets no
// tombstone, and its tree goes on.
func TestARestartedNodeBuriesNoLiveWorld(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	n := startNode(t, "solo", dir)
	n.waitLeader(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := n.client(t)
	require.NoError(t, c.CreateWorld(ctx, "arena", wire.Rules{}))
	_, err := c.Act(ctx, "arena", incr("p1", 1, "e1", 1))
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		_, err := c.AuditProof(ctx, "arena", 1, 1)
		return err == nil
	}, time.Minute, 10*time.Millisecond)
	require.Equal(t, 0, n.stop(t))

	n = startNodeAt(t, "solo", dir, n.http, n.raft)
	n.waitLeader(t)
	c = n.client(t)
	_, err = c.Act(ctx, "arena", incr("p1", 2, "e1", 1))
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		p, err := c.AuditProof(ctx, "arena", 2, 2)
		return err == nil && p.Size == 2
	}, time.Minute, 10*time.Millisecond)
	require.NotContains(t, n.stderr.String(), "tombstone")
}

// A group's feed that cannot be opened is the auditor's error, never a
// subscription holding a nil pointer; a group that applied its log is
// settled.
func TestTheAuditSourceOfAGroupAnswersAFeedItCannotOpenWithAnError(t *testing.T) {
	st := oneNodeStore(t, "a1")
	src := storeSource{st: st, settle: &settling{log: slog.Default()}}
	require.Eventually(t, src.Settled, 10*time.Second, 10*time.Millisecond)
	sub, err := src.Subscribe("nowhere", 1)
	require.ErrorIs(t, err, fsm.ErrUnknownWorld)
	require.Nil(t, sub)
}

// replica is a group's replica as settling reads it.
type replica struct{ last, applied uint64 }

func (r *replica) LastIndex() uint64    { return r.last }
func (r *replica) Status() store.Status { return store.Status{AppliedIndex: r.applied} }

// The auditor's replay wait is per group (one group behind holds back
// its own worlds only), ends at the group's last index now when a new
// leader truncated the tail it had at start, and is signalled: a log
// line (not at every look) and the unsettled count.
func TestAuditSettlingIsPerGroupBoundedAndSignalled(t *testing.T) {
	var logs bytes.Buffer
	s := &settling{log: slog.New(slog.NewTextHandler(&logs, nil))}
	behind, done := &replica{last: 10, applied: 4}, &replica{last: 7, applied: 7}
	require.False(t, s.settled([]replayer{behind, done}))
	require.True(t, s.groupSettled(done), "a group that applied its log is audited")
	require.False(t, s.groupSettled(behind))
	require.Equal(t, 1, s.unsettled())
	require.Contains(t, logs.String(), "audit waits for groups of this node to replay their logs")
	require.False(t, s.settled([]replayer{behind, done}))
	require.Equal(t, 1, strings.Count(logs.String(), "audit waits"), "rate-limited")

	behind.last, behind.applied = 5, 5 // a new leader truncated its tail at 5
	require.True(t, s.settled([]replayer{behind, done}))
	require.True(t, s.groupSettled(behind))
	require.Zero(t, s.unsettled())
}
