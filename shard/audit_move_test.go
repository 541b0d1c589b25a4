package shard

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/anticheat/audit"
	"github.com/gsd-dev/gsd/anticheat/audit/auditor"
	"github.com/gsd-dev/gsd/anticheat/audit/boltstore"
	"github.com/gsd-dev/gsd/fanout"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/store"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
	"go.etcd.io/bbolt"
	"golang.org/x/mod/sumdb/note"
)

// auditSource is cmd/gsd's groupsSource: the auditor's view of a node's
// groups through its FeedSource (Worlds, Home, Away, Deleted).
type auditSource struct{ *FeedSource }

func (s auditSource) Subscribe(world string, from uint64) (fanout.Subscription, error) {
	sub, err := s.FeedSource.Subscribe(world, from)
	if err != nil {
		return nil, err
	}
	return sub, nil
}

// startAuditor runs an auditor over b's groups, its trees in a bolt file
// of its own, until the test ends.
func startAuditor(t *testing.T, b *Backend, signer note.Signer) *auditor.Auditor {
	t.Helper()
	db, err := bbolt.Open(filepath.Join(t.TempDir(), "audit.db"), 0o600, &bbolt.Options{Timeout: time.Second, NoSync: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() }) // after the auditor stopped (cleanups run last first)
	cfg := auditor.DefaultConfig()
	cfg.Signers, cfg.ScanInterval, cfg.SignInterval = []note.Signer{signer}, 5*time.Millisecond, time.Hour
	cfg.Logger = slog.New(slog.DiscardHandler)
	a, err := auditor.New(cfg, auditSource{NewFeedSource(b)}, boltstore.NewTrees(db))
	require.NoError(t, err)
	runUntilCleanup(t, func(ctx context.Context) error { a.Run(ctx); return nil })
	return a
}

// waitAudited waits until a's tree of world holds n events.
func waitAudited(t *testing.T, a *auditor.Auditor, world string, n int64) {
	t.Helper()
	require.Eventually(t, func() bool {
		st, err := a.Status(world)
		return err == nil && st.Size == n
	}, 30*time.Second, 5*time.Millisecond, "%s's audit tree holds %d events", world, n)
}

// signedBy signs world's checkpoint on a and opens it with v.
func signedBy(t *testing.T, a *auditor.Auditor, world string, v note.Verifier) audit.Checkpoint {
	t.Helper()
	msg, err := a.Sign(world)
	require.NoError(t, err)
	cp, _, err := audit.OpenCheckpoint(msg, v)
	require.NoError(t, err)
	return cp
}

// exportOf is evs as the NDJSON match log gsdctl audit fetch writes.
func exportOf(t *testing.T, evs []*fsm.Event) []byte {
	t.Helper()
	var b bytes.Buffer
	for _, e := range evs {
		w := e.Wire()
		require.NoError(t, json.NewEncoder(&b).Encode(w))
	}
	return b.Bytes()
}

// Issue 15 under a shard map: every node's auditor follows the worlds of
// every group it runs, not group 0's only, and a world that moves keeps
// one tree. Node n1 runs groups 1 and 2, n2 runs group 2 only. lobby
// lives on group 2 from the start; arena and the salted salty move from
// group 1 to group 2: n1 goes on with their trees at the new home, n2
// builds them from the events before the fence once its archive holds
// them (until then its follower reports the gap), and both sign the same
// trees, consistent with the checkpoints signed before the move. The
// whole exported log verifies across the move against a post-move
// checkpoint and the pre-move one, and a tampered event is named. lobby,
// moved to group 1 afterwards, is kept on n2 (which does not run group
// 1) without a tombstone, and n1 goes on with it.
func TestTheAuditorsFollowEveryGroupsWorldsAndAWorldAcrossItsMove(t *testing.T) {
	c := newShardCluster(t, 2, Map{
		Membership: 3, // on both nodes, holding no world
		Shards:     []MapShard{{ID: 1, Voters: []string{"n1"}}, {ID: 2, Voters: []string{"n1", "n2"}}, {ID: 3, Voters: []string{"n1", "n2"}}},
		Worlds:     map[string]uint64{"arena": 1, "salty": 1, "lobby": 2},
	})
	mm := newMovingMap(c.smap)
	priv, pub, err := audit.GenerateKey("gsd-audit")
	require.NoError(t, err)
	s, err := audit.ParseSigningKey(priv)
	require.NoError(t, err)
	v, err := audit.ParseVerifyingKey(pub)
	require.NoError(t, err)
	auds, feeds := map[string]*auditor.Auditor{}, map[string]*FeedSource{}
	for _, id := range c.ids {
		b, err := NewBackend(NewRouterWith(c.mgrs[id], mm))
		require.NoError(t, err)
		auds[id], feeds[id] = startAuditor(t, b, s), NewFeedSource(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// The voters' versions: a move needs log version 8, a salted one 15
	joinReplicas(ctx, t, c, 1, 2)
	src := groupLeader(t, c, 1)
	dst := groupLeader(t, c, 2)
	mustCreateWorld(t, src, "arena")
	require.NoError(t, src.CreateSaltedWorld(ctx, "salty", fsm.Rules{}))
	mustCreateWorld(t, dst, "lobby")
	const fence = 6
	for seq := uint64(1); seq <= fence; seq++ {
		act(t, src, incr("arena", "p1", seq, "e1"))
		act(t, src, incr("salty", []string{"alice", "bob"}[seq%2], seq/2+1, "e1"))
		act(t, dst, incr("lobby", "p1", seq, "e1"))
	}
	for _, w := range []string{"arena", "salty", "lobby"} {
		waitAudited(t, auds["n1"], w, fence)
	}
	waitAudited(t, auds["n2"], "lobby", fence)
	_, err = auds["n2"].Status("arena")
	require.ErrorIs(t, err, fsm.ErrUnknownWorld, "n2 runs no replica of arena's group")
	before := map[string]audit.Checkpoint{"arena": signedBy(t, auds["n1"], "arena", v), "salty": signedBy(t, auds["n1"], "salty", v)}
	require.Equal(t, byte(2), before["salty"].Leaf)

	for _, w := range []string{"arena", "salty"} {
		at, err := Move(ctx, src, dst, w, 2, mm.publish)
		require.NoError(t, err)
		require.Equal(t, uint64(fence), at)
	}
	for seq := uint64(fence + 1); seq <= 2*fence; seq++ {
		act(t, dst, incr("arena", "p1", seq, "e1"))
		act(t, dst, incr("salty", "carol", seq, "e1"))
	}
	// n1 runs both groups: its followers go on at the new home.
	waitAudited(t, auds["n1"], "arena", 2*fence)
	waitAudited(t, auds["n1"], "salty", 2*fence)
	// n2 runs the new home only: the events before the fence are in its
	// archive once copied (the node-to-node copy, CopyMovedArchives);
	// until then its follower stops at the gap.
	n2dst, _ := c.mgrs["n2"].Group(2)
	require.Eventually(t, func() bool {
		st, err := auds["n2"].Status("arena")
		return err == nil && st.Size == 0 && st.Err != nil
	}, 30*time.Second, 5*time.Millisecond, "n2 reports the gap before the copy")
	st, err := auds["n2"].Status("arena")
	require.NoError(t, err)
	require.ErrorIs(t, st.Err, store.ErrArchiveGap)
	for _, w := range []string{"arena", "salty"} {
		_, err := CopyMovedArchive(ctx, n2dst, ArchiveOf(src, w), w, fence, MovedArchivePage)
		require.NoError(t, err)
		waitAudited(t, auds["n2"], w, 2*fence)
	}
	require.Equal(t, auditor.Stats{Worlds: 3, Events: 2*fence + 2*fence + fence, Signed: 0, Settled: true}, auds["n2"].Stats())

	for _, w := range []string{"arena", "salty"} {
		after := signedBy(t, auds["n2"], w, v)
		require.Equal(t, after, signedBy(t, auds["n1"], w, v), "%s: both nodes keep the same tree", w)
		l, err := auds["n2"].Log(w)
		require.NoError(t, err)
		p, err := l.ProveConsistency(fence, 2*fence)
		require.NoError(t, err)
		require.NoError(t, audit.CheckConsistency(before[w], after, p), "%s: the tree signed after the move extends the one signed before", w)

		evs := history(t, n2dst, w, 1, 2*fence)
		export := exportOf(t, evs)
		var rep audit.Report
		if w == "salty" {
			tab, err := n2dst.SaltTable(w)
			require.NoError(t, err)
			salts := saltsOf(w, tab)
			rep, err = audit.VerifySaltedLog(bytes.NewReader(export), after, salts, nil, before[w])
			require.NoError(t, err)
			require.True(t, rep.OK(), "%v", rep.Problems)
			tampered := bytes.Replace(export, []byte(`"carol"`), []byte(`"mallory"`), 1)
			rep, err = audit.VerifySaltedLog(bytes.NewReader(tampered), after, salts, nil, before[w])
			require.NoError(t, err)
		} else {
			rep, err = audit.VerifyLog(bytes.NewReader(export), after, nil, before[w])
			require.NoError(t, err)
			require.True(t, rep.OK(), "%v", rep.Problems)
			lines := bytes.Split(export, []byte("\n"))
			lines[2], lines[8] = lines[8], lines[2] // one before the fence, one after
			rep, err = audit.VerifyLog(bytes.NewReader(bytes.Join(lines, []byte("\n"))), after, nil, before[w])
			require.NoError(t, err)
		}
		require.False(t, rep.OK(), "%s: a tampered export is refused", w)
		require.NotEmpty(t, rep.Problems)
	}

	// lobby moves to group 1, which n2 does not run: n2 keeps its tree
	// without a tombstone and no longer follows it; n1 goes on with it.
	lobby, err := dst.World("lobby")
	require.NoError(t, err)
	_, err = Move(ctx, dst, src, "lobby", 1, mm.publish)
	require.NoError(t, err)
	act(t, src, incr("lobby", "p1", fence+1, "e1"))
	waitAudited(t, auds["n1"], "lobby", fence+1)
	require.Eventually(t, func() bool { return auds["n2"].Stats().Worlds == 2 }, 30*time.Second, 5*time.Millisecond, "n2 no longer follows lobby")
	_, err = auds["n2"].Log("lobby")
	require.ErrorIs(t, err, fsm.ErrUnknownWorld, "n2 no longer audits lobby")
	kept, err := auds["n2"].CheckpointOf("lobby", lobby.Incarnation)
	require.NoError(t, err)
	cp, _, err := audit.OpenCheckpoint(kept, v)
	require.NoError(t, err)
	require.False(t, cp.Tombstone, "moved, not deleted")
	require.Equal(t, int64(fence), cp.Size)
	require.True(t, feeds["n2"].Away("lobby", lobby.Incarnation), "placed on a group n2 does not run")
	held, ok := feeds["n2"].b.HeldWorld("lobby")
	require.True(t, ok, "n2's group 2 holds the fenced copy, whose rules guard the tree it keeps")
	require.NotNil(t, held.Moved)
	_, err = feeds["n2"].b.World("lobby")
	require.Error(t, err, "not listed")
	_, ok = feeds["n2"].b.HeldWorld("nowhere")
	require.False(t, ok)
	held, ok = feeds["n1"].b.HeldWorld("lobby")
	require.True(t, ok)
	require.Nil(t, held.Moved, "the placed copy first")
	require.Equal(t, uint64(1), feeds["n2"].Home("lobby"))

	// Deleted at its new home while its old home still holds it fenced:
	// n1's group 1 applied the delete of the live world, the evidence the
	// auditor buries on (the old home's drop later is none); n2, which
	// runs neither, keeps its tree without a tombstone.
	require.False(t, feeds["n1"].Deleted("lobby", lobby.Incarnation))
	_, err = src.DeleteWorld(ctx, "lobby", lobby.Incarnation)
	require.NoError(t, err)
	require.True(t, feeds["n1"].Away("lobby", lobby.Incarnation), "fenced on group 2")
	require.False(t, feeds["n1"].Away("lobby", lobby.Incarnation+1), "another incarnation was not fenced")
	require.Eventually(t, func() bool {
		msg, err := auds["n1"].CheckpointOf("lobby", lobby.Incarnation)
		require.NoError(t, err)
		cp, _, err = audit.OpenCheckpoint(msg, v)
		require.NoError(t, err)
		return cp.Tombstone
	}, 30*time.Second, 5*time.Millisecond, "n1 buries lobby once deleted")
	require.True(t, feeds["n1"].Deleted("lobby", lobby.Incarnation))
	require.False(t, feeds["n2"].Deleted("lobby", lobby.Incarnation), "n2 runs no group that deleted it")
	_, err = groupLeader(t, c, 2).DeleteWorld(ctx, "lobby", lobby.Incarnation)
	require.NoError(t, err)
	kept, err = auds["n2"].CheckpointOf("lobby", lobby.Incarnation)
	require.NoError(t, err)
	cp2, _, err := audit.OpenCheckpoint(kept, v)
	require.NoError(t, err)
	require.False(t, cp2.Tombstone, "n2 has no evidence of the deletion")
	require.Equal(t, int64(fence+1), cp.Size)
}

// A map without shards says nothing of where a world lives: Worlds lists
// every group's, Home is 0, and every world not listed counts as away
// (the auditor buries nothing on it).
func TestFeedSourceOfAMapWithoutShardsPlacesNothing(t *testing.T) {
	c := newShardCluster(t, 1, Map{Membership: 1, Shards: []MapShard{{ID: 1, Voters: []string{"n1"}}}})
	b, err := NewBackend(NewRouterWith(c.mgrs["n1"], newMovingMap(&Map{Membership: 1})))
	require.NoError(t, err)
	fs := NewFeedSource(b)
	require.False(t, fs.Placed())
	require.Zero(t, fs.Home("arena"))
	require.True(t, fs.Away("arena", 1))
	placed, err := NewBackend(c.routers["n1"])
	require.NoError(t, err)
	require.True(t, NewFeedSource(placed).Placed())
}

// saltsOf is a salt table in the form gsdctl audit verify --salts reads.
func saltsOf(world string, tab fsm.SaltTable) *wire.AuditSalts {
	out := &wire.AuditSalts{World: world, Incarnation: tab.Incarnation}
	for _, s := range tab.Salts {
		out.Salts = append(out.Salts, wire.AuditSalt{Player: s.Player, Salt: s.Key[:], Since: s.Since})
	}
	return out
}
