package main

import (
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/anticheat/audit"
	"github.com/gsd-dev/gsd/anticheat/audit/auditor"
	"github.com/gsd-dev/gsd/fanout"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/shard"
	"github.com/gsd-dev/gsd/store"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// oneWorld is an auditor source holding world arena whose feed never
// opens: the test appends to the tree itself.
type oneWorld struct{}

func (oneWorld) Worlds() []fsm.WorldInfo { return []fsm.WorldInfo{{ID: "arena"}} }
func (oneWorld) Subscribe(string, uint64) (fanout.Subscription, error) {
	return nil, errors.New("no feed in this test")
}

func TestAuditVerifierChecksRefilledEventsAgainstTheNodesTree(t *testing.T) {
	aud, err := auditor.New(auditor.DefaultConfig(), oneWorld{}, testTrees(t))
	require.NoError(t, err)
	l, err := aud.Log("arena")
	require.NoError(t, err)
	var evs []*fsm.Event
	for seq := uint64(1); seq <= 10; seq++ {
		e := &fsm.Event{World: "arena", Seq: seq, Index: seq + 3, Time: int64(seq), Player: "p1", ClientSeq: seq, Status: fsm.StatusApplied,
			Changes: []fsm.Change{{Entity: "e1", Field: "score", Op: fsm.OpIncr, Value: fsm.Int(int64(seq)), Version: seq}}}
		evs = append(evs, e)
		if seq <= 8 {
			w := e.Wire()
			require.NoError(t, l.Append(&w))
		}
	}
	v := auditVerifier{aud: aud, world: groupWorld(0)}
	n, err := v.VerifyRefill("arena", evs[:8])
	require.NoError(t, err)
	require.Equal(t, 8, n)
	n, err = v.VerifyRefill("arena", evs[5:])
	require.NoError(t, err)
	require.Equal(t, 3, n, "seqs 9 and 10 are past the tree: left to a second peer")

	forged := *evs[3]
	forged.Player = "mallory"
	n, err = v.VerifyRefill("arena", []*fsm.Event{evs[2], &forged})
	require.ErrorIs(t, err, audit.ErrProof)
	require.Equal(t, 1, n)

	n, err = v.VerifyRefill("lobby", evs[:1])
	require.NoError(t, err)
	require.Zero(t, n, "no tree for the world")
}

// groupWorld is a refilling group's store.World holding arena at
// incarnation inc (no other world).
func groupWorld(inc uint64) func(string) (fsm.WorldInfo, error) {
	return func(id string) (fsm.WorldInfo, error) {
		if id != "arena" {
			return fsm.WorldInfo{}, fsm.ErrUnknownWorld
		}
		return fsm.WorldInfo{ID: id, Incarnation: inc}, nil
	}
}

// incWorld is oneWorld at incarnation inc.
type incWorld struct {
	oneWorld
	inc uint64
}

func (w incWorld) Worlds() []fsm.WorldInfo { return []fsm.WorldInfo{{ID: "arena", Incarnation: w.inc}} }

// TestAuditVerifierUsesOnlyATreeOfTheRefillingGroupsIncarnation: the
// auditor's tree of arena is incarnation 5's (say group 0's fenced copy
// of a world that moved away); the group refilling holds arena created
// again at incarnation 9. The tree verifies none of its events: it
// answers "no tree" (the two-peer check), not a leaf mismatch that would
// refuse correct events forever. A group without the world at all gets
// the same answer.
func TestAuditVerifierUsesOnlyATreeOfTheRefillingGroupsIncarnation(t *testing.T) {
	aud, err := auditor.New(auditor.DefaultConfig(), incWorld{inc: 5}, testTrees(t))
	require.NoError(t, err)
	l, err := aud.Log("arena")
	require.NoError(t, err)
	require.Equal(t, uint64(5), l.Incarnation())
	old := &fsm.Event{World: "arena", Seq: 1, Index: 6, Player: "p1", ClientSeq: 1, Status: fsm.StatusApplied}
	w := old.Wire()
	require.NoError(t, l.Append(&w))
	recreated := &fsm.Event{World: "arena", Seq: 1, Index: 10, Player: "p2", ClientSeq: 1, Status: fsm.StatusApplied}

	v := auditVerifier{aud: aud, world: groupWorld(9)}
	n, err := v.VerifyRefill("arena", []*fsm.Event{recreated})
	require.NoError(t, err, "another incarnation's tree must not refuse this one's events")
	require.Zero(t, n)
	n, err = v.VerifyRefill("arena", []*fsm.Event{old})
	require.NoError(t, err)
	require.Zero(t, n, "nor verify the old incarnation's events into the new one's archive")

	v.world = func(string) (fsm.WorldInfo, error) { return fsm.WorldInfo{}, fsm.ErrUnknownWorld }
	n, err = v.VerifyRefill("arena", []*fsm.Event{old})
	require.NoError(t, err)
	require.Zero(t, n)

	// The same incarnation: the tree is used, and refuses what differs.
	v.world = groupWorld(5)
	n, err = v.VerifyRefill("arena", []*fsm.Event{old})
	require.NoError(t, err)
	require.Equal(t, 1, n)
	_, err = v.VerifyRefill("arena", []*fsm.Event{recreated})
	require.ErrorIs(t, err, audit.ErrProof)
}

func TestArchiveRefillOffOrBadInterval(t *testing.T) {
	a := archiveOptions{refillInterval: -1}
	require.Error(t, a.check())
	a.refillInterval = 0
	require.NoError(t, a.check())
	a.start(nil, nil, slog.Default())() // off: nothing runs
}

// saltedWorld is oneWorld with salted audit leaves.
type saltedWorld struct{ oneWorld }

func (saltedWorld) Worlds() []fsm.WorldInfo { return []fsm.WorldInfo{{ID: "arena", Salted: true}} }

// TestAuditVerifierChecksASaltedWorldsRefilledIDsAgainstItsSalts: a
// salted world's events verify with their salted ids; one whose ids the
// node's table does not confirm (a name passed off under another
// player's HMAC, an erased salt) ends what the tree verifies.
func TestAuditVerifierChecksASaltedWorldsRefilledIDsAgainstItsSalts(t *testing.T) {
	aud, err := auditor.New(auditor.DefaultConfig(), saltedWorld{}, testTrees(t))
	require.NoError(t, err)
	l, err := aud.Log("arena")
	require.NoError(t, err)
	require.Equal(t, wire.AuditLeafV2, l.LeafVersion())
	table := []fsm.Salt{{Player: "p1", Key: [fsm.SaltLen]byte{1}, Since: 1}, {Player: "p2", Key: [fsm.SaltLen]byte{2}, Since: 1}}
	salting := func(p string, key byte) *fsm.Salting {
		return &fsm.Salting{Names: []fsm.SaltedName{{Name: p, Digest: wire.SaltedID((&[fsm.SaltLen]byte{key})[:], p)}}}
	}
	var evs []*fsm.Event
	for seq := uint64(1); seq <= 6; seq++ {
		p, key := "p1", byte(1)
		if seq%2 == 0 {
			p, key = "p2", 2
		}
		e := &fsm.Event{World: "arena", Seq: seq, Player: p, ClientSeq: seq, Status: fsm.StatusApplied, Salted: salting(p, key),
			Changes: []fsm.Change{{Entity: "e1", Field: "score", Op: fsm.OpIncr, Value: fsm.Int(int64(seq)), Version: seq}}}
		evs = append(evs, e)
		w := e.Wire()
		require.NoError(t, l.AppendSalted([]*wire.Event{&w}, []wire.SaltedIDs{e.Salted.Lookup}))
	}
	v := auditVerifier{aud: aud, world: groupWorld(0), salts: func(string) ([]fsm.Salt, uint64, error) { return table, 0, nil }}
	n, err := v.VerifyRefill("arena", evs)
	require.NoError(t, err)
	require.Equal(t, 6, n)

	// p2's event 4 passed off as mallory's, under p2's HMAC: the leaf
	// alone would match; the table does not confirm it.
	forged := *evs[3]
	forged.Player = "mallory"
	forged.Salted = &fsm.Salting{Names: []fsm.SaltedName{{Name: "mallory", Digest: evs[3].Salted.Names[0].Digest}}}
	n, err = v.VerifyRefill("arena", []*fsm.Event{evs[2], &forged, evs[4]})
	require.NoError(t, err)
	require.Equal(t, 1, n, "the rest is left to a second peer")
	// Its HMAC dropped: the leaf differs from the tree's.
	bare := *evs[3]
	bare.Salted = nil
	n, err = v.VerifyRefill("arena", []*fsm.Event{evs[2], &bare})
	require.ErrorIs(t, err, audit.ErrProof)
	require.Equal(t, 1, n)

	// p1's salt erased: its events are no longer confirmed.
	v.salts = func(string) ([]fsm.Salt, uint64, error) { return table[1:], 0, nil }
	n, err = v.VerifyRefill("arena", evs[1:])
	require.NoError(t, err)
	require.Equal(t, 1, n, "event 2 (p2) verified, event 3 (p1) not confirmed")
	v.salts = func(string) ([]fsm.Salt, uint64, error) { return nil, 0, fsm.ErrUnknownWorld }
	n, err = v.VerifyRefill("arena", evs)
	require.NoError(t, err)
	require.Zero(t, n)
}

// The refillers follow the groups the node runs: one per group, started
// once (not again every interval), stopped when the group is gone and
// started again when it comes back. Each refiller here fails at once for
// want of peers, which it logs: one log per start.
func TestArchiveRefillersFollowTheGroupsTheNodeRuns(t *testing.T) {
	var buf syncBuffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	g1, g2 := new(store.Store), new(store.Store)
	var mu sync.Mutex
	cur, asked := []refillGroup{{st: g1}}, 0
	groups := func() []refillGroup {
		mu.Lock()
		defer mu.Unlock()
		asked++
		return cur
	}
	set := func(gs ...refillGroup) {
		mu.Lock()
		defer mu.Unlock()
		cur, asked = gs, 0
	}
	// waitAsked waits until groups was asked n times since the last set.
	waitAsked := func(n int) {
		require.Eventually(t, func() bool {
			mu.Lock()
			defer mu.Unlock()
			return asked >= n
		}, 10*time.Second, time.Millisecond)
	}
	starts := func() int { return strings.Count(buf.String(), "event archive refiller not started") }
	// expect waits for n starts in all, then for more intervals, and
	// checks that no other start followed.
	expect := func(n int, msg string) {
		require.Eventually(t, func() bool { return starts() >= n }, 10*time.Second, time.Millisecond, msg)
		mu.Lock()
		asked = 0
		mu.Unlock()
		waitAsked(5)
		require.Equal(t, n, starts(), msg)
	}
	a := archiveOptions{refillInterval: 5 * time.Millisecond}
	stop := a.start(groups, nil, log)
	defer stop()
	expect(1, "started once, not every interval")
	set(refillGroup{st: g1}, refillGroup{st: g2})
	expect(2, "a group opened later gets its refiller")
	set()
	waitAsked(2) // a whole pass without g1 and g2: stopped
	set(refillGroup{st: g1})
	expect(3, "a group closed and opened again gets a new one")
	stop()
	stop() // idempotent
}

// A shard's refill asks the voters the current map gives it, at the
// map's HTTP addresses; a group the map no longer has, nobody.
func TestShardRefillMembersAreTheGroupsVotersInTheMap(t *testing.T) {
	m := &shard.Map{
		Nodes:  map[string]shard.MapNode{"n1": {Raft: "127.0.0.1:1", HTTP: "127.0.0.1:2"}, "n2": {Raft: "127.0.0.1:3", HTTP: "https://127.0.0.1:4"}},
		Shards: []shard.MapShard{{ID: 1, Voters: []string{"n1", "n2"}}},
	}
	require.NoError(t, m.Validate())
	g := &shardGroups{router: shardRouter{shard.NewRouter(nil, m)}}
	require.Equal(t, []fsm.NodeInfo{{ID: "n1", HTTPAddr: "127.0.0.1:2"}, {ID: "n2", HTTPAddr: "https://127.0.0.1:4"}}, g.voters(1)())
	require.Empty(t, g.voters(2)())
}
