package auditor

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/anticheat/audit"
	"github.com/gsd-dev/gsd/fanout"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/note"
)

// placed is a node's feed over the groups of a shard map (Placement): a
// world's home group, and a feed opened at a group the world has left
// ends its events at the move's fence (the old group refuses every write
// after it). A world listed away lives on a group this node does not
// run; one hidden is not listed while a group or the map lags (Away and
// Deleted say nothing of it); one deleted is known deleted.
type placed struct {
	*source
	mu      sync.Mutex
	homes   map[string]uint64
	fences  map[[2]any]uint64 // world and group left: its fence
	away    map[string]bool
	hidden  map[string]bool
	deleted map[tree]bool
	asked   map[string]int // Deleted calls per world
	lists   int            // Worlds calls
}

func newPlaced() *placed {
	return &placed{source: newSource(), homes: map[string]uint64{}, fences: map[[2]any]uint64{}, away: map[string]bool{},
		hidden: map[string]bool{}, deleted: map[tree]bool{}, asked: map[string]int{}}
}

// move moves world from its home to group to at its current seq.
func (p *placed) move(world string, to uint64) {
	p.source.mu.Lock()
	n := uint64(len(p.source.events[world]))
	p.source.mu.Unlock()
	p.mu.Lock()
	p.fences[[2]any{world, p.homes[world]}] = n
	p.homes[world] = to
	p.mu.Unlock()
}

func (p *placed) setAway(world string, away bool) {
	p.mu.Lock()
	p.away[world] = away
	p.mu.Unlock()
}

func (p *placed) hide(world string, hidden bool) {
	p.mu.Lock()
	p.hidden[world] = hidden
	p.mu.Unlock()
}

// deleteAt deletes world's current incarnation where it lives, with the
// evidence (Deleted); again names its next incarnation, if any.
func (p *placed) deleteAt(world string, again ...uint64) {
	p.source.mu.Lock()
	inc := p.source.incs[world]
	p.source.mu.Unlock()
	p.mu.Lock()
	p.deleted[tree{world, inc}] = true
	p.mu.Unlock()
	p.recreate(world, again...)
}

// Worlds lists the worlds of the node's groups: not those away or hidden.
func (p *placed) Worlds() []fsm.WorldInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lists++
	return slices.DeleteFunc(p.source.Worlds(), func(w fsm.WorldInfo) bool { return p.away[w.ID] || p.hidden[w.ID] })
}

func (p *placed) Home(world string) uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.homes[world]
}

func (p *placed) Away(world string, _ uint64) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.away[world]
}

func (p *placed) Deleted(world string, inc uint64) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.asked[world]++
	return p.deleted[tree{world, inc}]
}

// scanned waits until the auditor listed the worlds n more times (n
// scans, or fewer and a follower's start).
func (p *placed) scanned(t *testing.T, n int) {
	t.Helper()
	p.mu.Lock()
	want := p.lists + n
	p.mu.Unlock()
	require.Eventually(t, func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.lists >= want
	}, 10*time.Second, time.Millisecond)
}

func (p *placed) Subscribe(world string, from uint64) (fanout.Subscription, error) {
	sub, err := p.source.Subscribe(world, from)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	home := p.homes[world]
	p.mu.Unlock()
	return &placedSub{p: p, sub: sub, key: [2]any{world, home}}, nil
}

// placedSub is a feed opened at one group: nothing after the fence once
// the world left it.
type placedSub struct {
	p   *placed
	sub fanout.Subscription
	key [2]any
}

func (s *placedSub) Next(ctx context.Context) ([]*fsm.Event, error) {
	for {
		evs, err := s.sub.Next(ctx)
		if err != nil {
			return nil, err
		}
		s.p.mu.Lock()
		fence, left := s.p.fences[s.key]
		s.p.mu.Unlock()
		for i, e := range evs {
			if left && e.Seq > fence {
				evs = evs[:i]
				break
			}
		}
		if len(evs) > 0 {
			return evs, nil
		}
	}
}

// extends signs a's arena checkpoint now and checks that it extends the
// one signed in before and that src's events verify against it.
func extends(t *testing.T, a *Auditor, src *source, before []byte, v note.Verifier) {
	t.Helper()
	after, err := a.Sign("arena")
	require.NoError(t, err)
	l, err := a.Log("arena")
	require.NoError(t, err)
	consistent(t, l, before, after, v)
	verifies(t, exportOf(t, src, "arena"), after, v)
}

// consistent checks that the tree signed in newer extends the one signed
// in older, by l's consistency proof.
func consistent(t *testing.T, l *audit.Log, older, newer []byte, v note.Verifier) {
	t.Helper()
	o, _, err := audit.OpenCheckpoint(older, v)
	require.NoError(t, err)
	n, _, err := audit.OpenCheckpoint(newer, v)
	require.NoError(t, err)
	require.Less(t, o.Size, n.Size)
	p, err := l.ProveConsistency(o.Size, n.Size)
	require.NoError(t, err)
	require.NoError(t, audit.CheckConsistency(o, n, p))
}

// A world that moves between two groups of the node keeps one tree: its
// follower, whose feed at the old group ends at the fence, is started
// again on the new home from the tree's size, and the checkpoints signed
// before and after the move are consistent.
func TestAWorldMovedBetweenGroupsOfTheNodeKeepsOneTree(t *testing.T) {
	logs := &syncBuf{}
	cfg, v := signingConfig(t, logs)
	src, st, a := followedOnGroup1(t, cfg, 5)
	before, err := a.Sign("arena")
	require.NoError(t, err)

	src.move("arena", 2)
	src.add("arena", 4) // committed at the new home
	waitSize(t, a, "arena", 9)
	extends(t, a, src.source, before, v)
	require.Equal(t, Stats{Worlds: 1, Events: 9, Signed: 2, Settled: true}, a.Stats())
	require.Empty(t, st.tomb("arena", 0), "moved, not deleted")
	require.NotContains(t, logs.String(), "stopped following", "a move is not a failure")
}

// A world that moves to a group this node does not run is no longer
// followed here, and its tree is kept without a tombstone (it was not
// deleted: it goes on where it lives now), also across a restart; when
// it comes back to a group of this node its tree goes on; once it is
// neither here nor away (deleted), it gets its tombstone.
func TestAWorldMovedAwayKeepsItsTreeWithoutATombstone(t *testing.T) {
	src, st, logs := newPlaced(), newStores(), &syncBuf{}
	cfg, v := signingConfig(t, logs)
	src.add("arena", 3)
	src.add("lobby", 1)
	a, err := New(cfg, src, st)
	require.NoError(t, err)
	stop := run(a)
	waitSize(t, a, "arena", 3)
	waitSize(t, a, "lobby", 1)
	before, err := a.Sign("arena")
	require.NoError(t, err)

	// Away: the node no longer lists it (its follower's feed, at the
	// group it left, has nothing more).
	src.setAway("arena", true)
	require.Eventually(t, func() bool { return a.Stats().Worlds == 1 }, 10*time.Second, time.Millisecond, "arena is not followed here")
	require.Empty(t, st.tomb("arena", 0))
	_, err = a.Log("arena")
	require.ErrorIs(t, err, fsm.ErrUnknownWorld, "not audited here any more")
	require.ErrorContains(t, err, "moved or is moving to another group")
	l, err := a.LogOf("arena", 0)
	require.NoError(t, err)
	require.Equal(t, int64(3), l.Size(), "its tree up to the move is kept and served")
	kept, err := a.CheckpointOf("arena", 0)
	require.NoError(t, err)
	cp, _, err := audit.OpenCheckpoint(kept, v)
	require.NoError(t, err)
	require.False(t, cp.Tombstone)
	require.Contains(t, logs.String(), "audit log of a world moved or moving to another group")
	stop()

	// A restart while it is away buries nothing; lobby, deleted for good
	// meanwhile (its group applied the delete), gets its tombstone.
	src.deleteAt("lobby")
	a, err = New(cfg, src, st)
	require.NoError(t, err)
	stop = run(a)
	require.Eventually(t, func() bool { return st.tomb("lobby", 0) != "" }, 10*time.Second, time.Millisecond)
	require.Empty(t, st.tomb("arena", 0))

	// Back on a group of this node, with the events it got meanwhile:
	// the same tree goes on.
	src.add("arena", 2)
	src.setAway("arena", false)
	waitSize(t, a, "arena", 5)
	extends(t, a, src.source, before, v)

	// Away again, then deleted there: the next scans bury it once a
	// group of this node applied the delete, not before.
	src.setAway("arena", true)
	src.scanned(t, 3)
	require.Empty(t, st.tomb("arena", 0))
	src.recreate("arena")
	src.setAway("arena", false)
	src.scanned(t, 3)
	require.Empty(t, st.tomb("arena", 0), "gone from the list, not known deleted")
	src.mu.Lock()
	src.deleted[tree{"arena", 0}] = true
	src.mu.Unlock()
	require.Eventually(t, func() bool { return st.tomb("arena", 0) != "" }, 10*time.Second, time.Millisecond)
	stop()
}

// unsettled is a source whose world list is not the node's yet (its
// groups have not replayed their logs) until ready.
type unsettled struct {
	*source
	ready atomic.Bool
	asked atomic.Int64 // Settled calls
}

func (u *unsettled) Settled() bool {
	u.asked.Add(1)
	return u.ready.Load()
}

// A restarted node's world list lacks the worlds its groups have not
// replayed yet: until the source settles the auditor neither buries the
// stored trees of worlds missing from it (it would write a live world a
// tombstone) nor follows; then it does both.
func TestTheAuditorWaitsForItsSourceToSettleBeforeBurying(t *testing.T) {
	src, st, logs := newSource(), newStores(), &syncBuf{}
	loggedOnce(t, src, st, logs, map[string]int{"arena": 3, "gone": 2})

	src.recreate("gone") // deleted for good while the node was down
	us := &unsettled{source: src}
	us.source.mu.Lock()
	listed := us.source.events["arena"]
	delete(us.source.events, "arena") // not replayed yet
	us.source.mu.Unlock()
	a, err := New(testConfig(logs), us, st)
	require.NoError(t, err)
	start(t, a)
	require.Eventually(t, func() bool { return us.asked.Load() > 3 }, 10*time.Second, time.Millisecond)
	require.Empty(t, st.tomb("gone", 0))
	require.Zero(t, a.Stats().Worlds)

	us.source.mu.Lock()
	us.source.events["arena"] = listed // replayed
	us.source.mu.Unlock()
	us.ready.Store(true)
	require.Eventually(t, func() bool { return st.tomb("gone", 0) != "" }, 10*time.Second, time.Millisecond)
	src.add("arena", 1)
	waitSize(t, a, "arena", 4)
	require.Empty(t, st.tomb("arena", 0))
}

// A world whose tree could not be opened moves away: nothing to keep or
// stop, and no panic.
func TestAWorldWhoseTreeNeverOpenedMayMoveAway(t *testing.T) {
	src, st, logs := newPlaced(), newStores(), &syncBuf{}
	st.set(func(s *stores) { s.fail["broken"] = errors.New("disk full") })
	src.add("broken", 2)
	src.add("arena", 1)
	a, err := New(testConfig(logs), src, st)
	require.NoError(t, err)
	start(t, a)
	waitSize(t, a, "arena", 1)
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "disk full") }, 10*time.Second, time.Millisecond)
	src.setAway("broken", true)
	src.scanned(t, 3)
	require.NotContains(t, logs.String(), "kept without a tombstone", "no tree to keep")
	require.Empty(t, st.tomb("broken", 0))
}
