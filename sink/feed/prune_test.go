package feed_test

import (
	"context"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/sink/feed"
	"github.com/gsd-dev/gsd/sink/internal/sinktest"
	"github.com/gsd-dev/gsd/store"
	"github.com/stretchr/testify/require"
)

// newStore returns a single-node store that leads its group.
func newStore(t *testing.T) *store.Store {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	cfg := store.DefaultConfig()
	cfg.ID, cfg.Dir, cfg.RaftAddr, cfg.HTTPAddr = "n1", filepath.Join(t.TempDir(), "n1"), addr, "http-n1"
	cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout = 500*time.Millisecond, 500*time.Millisecond, 250*time.Millisecond
	cfg.ApplyTimeout, cfg.SnapshotInterval = 5*time.Second, time.Hour
	cfg.NoSync, cfg.Bootstrap, cfg.Logger = true, true, slog.New(slog.DiscardHandler)
	st, err := store.New(cfg, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close(context.Background()) })
	require.Eventually(t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return st.ReadBarrier(ctx) == nil
	}, 10*time.Second, 10*time.Millisecond)
	return st
}

// positionIDs returns the entity ids of st's PositionsWorld.
func positionIDs(t *testing.T, st *store.Store) []string {
	t.Helper()
	ents, _, err := st.Entities(feed.PositionsWorld)
	require.NoError(t, err)
	ids := []string{}
	for _, e := range ents {
		ids = append(ids, e.ID)
	}
	return ids
}

func posID(sink string, inc int64, world string) string {
	return sink + "|" + strconv.FormatInt(inc, 10) + "|" + world
}

func TestPruneRemovesThePositionsOfDeletedIncarnationsOnceTheSinkIsDoneWithThem(t *testing.T) {
	st := newStore(t)
	ctx := context.Background()
	src := feed.NewStoreSource(st)
	long := strings.Repeat("l", 125) // its position's entity id is hashed
	for _, w := range []string{"a", "b", long} {
		require.NoError(t, st.CreateWorld(ctx, w, fsm.Rules{}))
	}
	incOf := func(w string) int64 {
		inc, ok := feed.Incarnation(src, w)
		require.True(t, ok, w)
		return inc
	}
	a1, b1, l1 := incOf("a"), incOf("b"), incOf(long)
	rep := func(sink string, interval time.Duration) *feed.Replicated {
		r, err := feed.NewReplicated(feed.ReplicatedConfig{Sink: sink, Writer: "n1", Every: 1, Interval: interval},
			func(string) (feed.PositionGroup, error) { return st, nil })
		require.NoError(t, err)
		return r
	}
	web, files := rep("webhook", time.Nanosecond), rep("files", time.Nanosecond)
	save := func(r *feed.Replicated, w string, inc int64, seq uint64) {
		t.Helper()
		wrote, err := r.Save(ctx, w, feed.Position{Incarnation: inc, Seq: seq}, true)
		require.NoError(t, err)
		require.True(t, wrote)
	}
	save(web, "a", a1, 5)
	save(web, "b", b1, 3)
	save(web, long, l1, 2)
	save(files, "b", b1, 4)
	require.Len(t, positionIDs(t, st), 4)

	// a deleted and created again; b and the long one deleted.
	_, err := st.DeleteWorld(ctx, "a", uint64(a1))
	require.NoError(t, err)
	require.NoError(t, st.CreateWorld(ctx, "a", fsm.Rules{}))
	a2 := incOf("a")
	save(web, "a", a2, 1)
	for w, inc := range map[string]int64{"b": b1, long: l1} {
		_, err := st.DeleteWorld(ctx, w, uint64(inc))
		require.NoError(t, err)
	}

	// b's session is still ending here: its position stays; the
	// positions of a's old incarnation and of the long world go; the
	// files sink's are not the webhook's to prune.
	n, err := web.Prune(ctx, src, map[string]int64{"a": a2, "b": b1})
	require.NoError(t, err)
	require.Equal(t, 2, n)
	require.ElementsMatch(t, []string{posID("webhook", a2, "a"), posID("webhook", b1, "b"), posID("files", b1, "b")}, positionIDs(t, st))
	// A session that does not know its incarnation yet keeps all of its
	// world's.
	n, err = web.Prune(ctx, src, map[string]int64{"b": 0})
	require.NoError(t, err)
	require.Zero(t, n)
	// b's session ended.
	n, err = web.Prune(ctx, src, nil)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.ElementsMatch(t, []string{posID("webhook", a2, "a"), posID("files", b1, "b")}, positionIDs(t, st))

	// A restart (nothing in memory) resumes a's incarnation where it
	// stood; the pruned incarnation has no position to resume.
	again := rep("webhook", time.Nanosecond)
	ps, err := again.Merge(ctx, src, "a", nil)
	require.NoError(t, err)
	require.Equal(t, []feed.Position{{Incarnation: a2, Seq: 1}}, ps)
	_, found, err := again.Load(ctx, "a", a1)
	require.NoError(t, err)
	require.False(t, found)

	// At most once per Interval.
	slow := rep("files", time.Hour)
	n, err = slow.Prune(ctx, src, nil)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Equal(t, []string{posID("webhook", a2, "a")}, positionIDs(t, st))
	save(slow, "a", a2, 7)
	_, err = st.DeleteWorld(ctx, "a", uint64(a2))
	require.NoError(t, err)
	n, err = slow.Prune(ctx, src, nil)
	require.NoError(t, err)
	require.Zero(t, n, "pruned less than Interval ago")
}

// A position written meanwhile (a node still delivering the incarnation)
// is not removed: the delete expects the version Prune read, and the
// next Prune looks again.
func TestPruneLeavesAPositionWrittenSinceItWasRead(t *testing.T) {
	st := newStore(t)
	ctx := context.Background()
	src := feed.NewStoreSource(st)
	require.NoError(t, st.CreateWorld(ctx, "a", fsm.Rules{}))
	inc, ok := feed.Incarnation(src, "a")
	require.True(t, ok)
	g := &racing{Store: st}
	r, err := feed.NewReplicated(feed.ReplicatedConfig{Sink: "webhook", Writer: "n1", Every: 1, Interval: time.Nanosecond},
		func(string) (feed.PositionGroup, error) { return g, nil })
	require.NoError(t, err)
	wrote, err := r.Save(ctx, "a", feed.Position{Incarnation: inc, Seq: 5}, true)
	require.NoError(t, err)
	require.True(t, wrote)
	_, err = st.DeleteWorld(ctx, "a", uint64(inc))
	require.NoError(t, err)
	g.before = func() { // another node raises the position between the read and the delete
		a := &fsm.Action{World: feed.PositionsWorld, Player: "other", Seq: 1, Role: fsm.RoleServer,
			Ops: []fsm.Op{{Kind: fsm.OpSet, Entity: posID("webhook", inc, "a"), Field: "seq", Value: fsm.Int(9)}}}
		ev, _, err := st.Act(ctx, a)
		require.NoError(t, err)
		require.Equal(t, fsm.StatusApplied, ev.Status)
	}
	n, err := r.Prune(ctx, src, nil)
	require.NoError(t, err)
	require.Zero(t, n)
	require.Equal(t, []string{posID("webhook", inc, "a")}, positionIDs(t, st))
	g.before = nil
	n, err = r.Prune(ctx, src, nil)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Empty(t, positionIDs(t, st))
}

// racing is a store that runs before, once, ahead of the next action.
type racing struct {
	*store.Store
	before func()
}

func (r *racing) Act(ctx context.Context, a *fsm.Action) (*fsm.Event, bool, error) {
	if f := r.before; f != nil {
		r.before = nil
		f()
	}
	return r.Store.Act(ctx, a)
}

// The follower tells Checked the worlds it follows, with the incarnation
// of each session, and forgets a world once its session ended.
func TestFollowerTellsCheckedTheIncarnationsItFollows(t *testing.T) {
	src := sinktest.NewSource()
	src.Add("w", 3, 1000)
	src.Add("v", 2, 1000)
	inc := src.Incarnation("w")
	got := make(chan map[string]int64, 1000)
	f, err := feed.NewFollower(testConfig(), src, feed.Hooks[*target]{
		Start:   func(world string) *target { return &target{world: world} },
		Fail:    func(string, *target, error, time.Duration) {},
		Checked: func(_ context.Context, following map[string]int64) { got <- following },
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })
	wait := func(want map[string]int64) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			select {
			case m := <-got:
				if len(m) == len(want) && func() bool {
					for k, v := range want {
						if m[k] != v {
							return false
						}
					}
					return true
				}() {
					return
				}
			case <-deadline:
				require.Fail(t, "Checked was never told", "%v", want)
			}
		}
	}
	wait(map[string]int64{"w": inc, "v": src.Incarnation("v")})
	src.Delete("v")
	wait(map[string]int64{"w": inc})
	src.Recreate("w", 1, 2000)
	wait(map[string]int64{"w": src.Incarnation("w")})
	require.NotEqual(t, inc, src.Incarnation("w"))
}

func TestPruneKeepsThePositionOfAWorldWhoseNameStartsWithAHash(t *testing.T) {
	st := newStore(t)
	ctx := context.Background()
	src := feed.NewStoreSource(st)
	// A short name is kept as it is in the position's entity id, "#" and
	// all: it is no hash of a long name.
	require.NoError(t, st.CreateWorld(ctx, "#lobby", fsm.Rules{}))
	inc, ok := feed.Incarnation(src, "#lobby")
	require.True(t, ok)
	r, err := feed.NewReplicated(feed.ReplicatedConfig{Sink: "webhook", Writer: "n1", Every: 1, Interval: time.Nanosecond},
		func(string) (feed.PositionGroup, error) { return st, nil })
	require.NoError(t, err)
	wrote, err := r.Save(ctx, "#lobby", feed.Position{Incarnation: inc, Seq: 3}, true)
	require.NoError(t, err)
	require.True(t, wrote)

	// Followed, and held at the incarnation the position names: kept.
	n, err := r.Prune(ctx, src, map[string]int64{"#lobby": inc})
	require.NoError(t, err)
	require.Zero(t, n)
	// Not followed here but held at that incarnation: kept too.
	n, err = r.Prune(ctx, src, nil)
	require.NoError(t, err)
	require.Zero(t, n)
	require.Equal(t, []string{posID("webhook", inc, "#lobby")}, positionIDs(t, st))
}
