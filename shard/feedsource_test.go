package shard

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/internal/pgtest"
	"github.com/gsd-dev/gsd/sink/feed"
	"github.com/gsd-dev/gsd/sink/pg"
	"github.com/gsd-dev/gsd/sink/webhook"
	"github.com/gsd-dev/gsd/store"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

var hookSecret = []byte("feed-source-test-secret-0123456789")

// hookReceiver is a webhook endpoint that keeps every event it is sent,
// by world and seq, with how often each came.
type hookReceiver struct {
	t   *testing.T
	srv *httptest.Server

	mu  sync.Mutex
	got map[string]map[uint64]int
}

func newHookReceiver(t *testing.T) *hookReceiver {
	r := &hookReceiver{t: t, got: map[string]map[uint64]int{}}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(req.Body)
		if err != nil || !webhook.Verify(hookSecret, body, req.Header.Get(webhook.HeaderSignature)) {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		var b webhook.Batch
		if err := json.Unmarshal(body, &b); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		if r.got[b.World] == nil {
			r.got[b.World] = map[uint64]int{}
		}
		for _, ev := range b.Events {
			r.got[b.World][ev.Seq]++
		}
		r.mu.Unlock()
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// has reports whether the receiver holds every event of world from 1 to n.
func (r *hookReceiver) has(world string, n uint64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for seq := uint64(1); seq <= n; seq++ {
		if r.got[world][seq] == 0 {
			return false
		}
	}
	return true
}

// beyond reports whether the receiver holds an event of world after n.
func (r *hookReceiver) beyond(world string, n uint64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for seq := range r.got[world] {
		if seq > n {
			return true
		}
	}
	return false
}

// runUntilCleanup runs run in the background until the test's end.
func runUntilCleanup(t *testing.T, run func(context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = run(ctx)
	}()
	t.Cleanup(func() { cancel(); <-done })
}

// startHook runs a webhook sink on one node over src, posting to r.
func startHook(t *testing.T, r *hookReceiver, src feed.Source) *webhook.Sink {
	t.Helper()
	cfg := webhook.DefaultConfig()
	cfg.URL, cfg.KeyID, cfg.Secret, cfg.Dir = r.srv.URL, "k1", hookSecret, t.TempDir()
	cfg.BatchSize, cfg.Linger, cfg.CheckInterval = 16, time.Millisecond, 10*time.Millisecond
	cfg.RetryMin, cfg.RetryMax, cfg.Timeout = time.Millisecond, 20*time.Millisecond, 2*time.Second
	cfg.Logger = slog.New(slog.DiscardHandler)
	s, err := webhook.New(cfg, src, nil)
	require.NoError(t, err)
	runUntilCleanup(t, s.Run)
	return s
}

// mirroredSeqs returns how many distinct events of world the pg sink's
// database holds (0 when it cannot tell yet).
func mirroredSeqs(dsn, world string) uint64 {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return 0
	}
	defer conn.Close(ctx)
	var n int64
	if err := conn.QueryRow(ctx, `SELECT count(DISTINCT seq) FROM gsd.events WHERE world = $1`, world).Scan(&n); err != nil {
		return 0
	}
	return uint64(n)
}

// mirroredPlayers returns how many players of world the pg sink's
// database holds (0 when it cannot tell yet).
func mirroredPlayers(dsn, world string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return 0
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM gsd.players WHERE world = $1`, world).Scan(&n); err != nil {
		return 0
	}
	return n
}

// Under a shard map every node runs its sinks over all its groups: each
// world is mirrored by the leader of its own group, whichever group that
// is, and when one group's leadership moves, the mirroring of its worlds
// moves with it while the other group's stays.
func TestSinksMirrorTheWorldsOfEveryGroupAndFollowEachGroupsLeader(t *testing.T) {
	c := newShardCluster(t, 3, Map{
		Membership: 1,
		Shards:     []MapShard{{ID: 1, Voters: []string{"n1", "n2", "n3"}}, {ID: 2, Voters: []string{"n1", "n2", "n3"}}},
		Worlds:     map[string]uint64{"a": 1, "b": 2},
	})
	_, stA := c.leader("a")
	_, stB := c.leader("b")
	mustCreateWorld(t, stA, "a")
	mustCreateWorld(t, stB, "b")
	const first = 20
	for seq := uint64(1); seq <= first; seq++ {
		c.act("a", seq)
		c.act("b", seq)
	}

	srv := pgtest.Start(t) // skips with a reason when PostgreSQL cannot start
	dsn := srv.DSN("postgres")
	r := newHookReceiver(t)
	hooks := map[string]*webhook.Sink{}
	for _, id := range c.ids {
		b, err := NewBackend(c.routers[id])
		require.NoError(t, err)
		fs := NewFeedSource(b)
		hooks[id] = startHook(t, r, feed.NewGroupsSource(fs))
		cfg := pg.DefaultConfig()
		cfg.DSN, cfg.BatchSize, cfg.CheckInterval = dsn, 16, 20*time.Millisecond
		cfg.RetryMin, cfg.RetryMax, cfg.Logger = 10*time.Millisecond, 100*time.Millisecond, slog.New(slog.DiscardHandler)
		s, err := pg.New(cfg, pg.WithPlayers(feed.NewGroupsSource(fs), fs), nil)
		require.NoError(t, err)
		runUntilCleanup(t, s.Run)
	}
	for _, w := range []string{"a", "b"} {
		require.Eventually(t, func() bool { return r.has(w, first) }, 30*time.Second, 5*time.Millisecond, "webhook: world %s", w)
		require.Eventually(t, func() bool { return mirroredSeqs(dsn, w) == first }, 30*time.Second, 10*time.Millisecond, "pg: world %s", w)
	}
	// Player data of a world on group 2 reaches the pg mirror too.
	_, stB = c.leader("b")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	_, err := stB.Session(ctx, fsm.CmdSessionImport, &fsm.SessionCmd{World: "b", Player: "ann", Data: []fsm.DataItem{{Key: "gold", Value: fsm.Int(7)}}})
	cancel()
	require.NoError(t, err)
	require.Eventually(t, func() bool { return mirroredPlayers(dsn, "b") == 1 }, 30*time.Second, 10*time.Millisecond, "pg: b's players")

	leaderA, stA := c.leader("a")
	leaderB, _ := c.leader("b")
	require.Equal(t, uint64(first), hooks[leaderA].Position("a"), "a's group leader exports a")
	require.Equal(t, uint64(first), hooks[leaderB].Position("b"), "b's group leader exports b")

	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	require.NoError(t, stA.TransferLeadership(ctx))
	cancel()
	var newA string
	require.Eventually(t, func() bool {
		newA, _ = c.leader("a")
		return newA != leaderA
	}, 10*time.Second, 5*time.Millisecond)
	const second = 40
	for seq := uint64(first + 1); seq <= second; seq++ {
		c.act("a", seq)
		c.act("b", seq)
	}
	for _, w := range []string{"a", "b"} {
		require.Eventually(t, func() bool { return r.has(w, second) }, 30*time.Second, 5*time.Millisecond, "webhook: world %s", w)
		require.Eventually(t, func() bool { return mirroredSeqs(dsn, w) == second }, 30*time.Second, 10*time.Millisecond, "pg: world %s", w)
	}
	require.False(t, r.beyond("a", second) || r.beyond("b", second), "no event the worlds do not hold")
	// Asked again: on a loaded machine the leadership may have moved on
	// from newA since (an election), and the export follows it there.
	require.Eventually(t, func() bool {
		newA, _ = c.leader("a")
		return hooks[newA].Position("a") == second
	}, 10*time.Second, 5*time.Millisecond, "a's group leader exports a")
	if newA != leaderA {
		require.Less(t, hooks[leaderA].Position("a"), uint64(second), "a's old leader stopped exporting a")
	}
	if newB, _ := c.leader("b"); newB == leaderB {
		require.Equal(t, uint64(second), hooks[leaderB].Position("b"), "b's leader goes on exporting b")
	}
}

// movingMap is a map source whose placements a test changes (as the
// meta group's does after a move).
type movingMap struct{ v atomic.Pointer[View] }

func newMovingMap(m *Map) *movingMap {
	mm := &movingMap{}
	mm.v.Store(&View{Map: m})
	return mm
}

func (m *movingMap) View() *View { return m.v.Load() }

// publish places world on shard g (a Publish).
func (m *movingMap) publish(_ context.Context, world string, g uint64) error {
	next := *m.v.Load().Map
	next.Worlds = maps.Clone(next.Worlds)
	next.Worlds[world] = g
	m.v.Store(&View{Map: &next})
	return nil
}

// once reports whether the receiver holds world's events 1 to n, each
// exactly once, and none after n.
func (r *hookReceiver) once(world string, n uint64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if uint64(len(r.got[world])) != n {
		return false
	}
	for seq := uint64(1); seq <= n; seq++ {
		if r.got[world][seq] != 1 {
			return false
		}
	}
	return true
}

// After a world moved between two groups of the node, its sink goes on at
// the new home: a sink that had delivered up to the fence continues from
// N+1, which the new home holds; one that had not reads the rest up to N
// from the old home, which still holds the fenced world, then N+1 on from
// the new one. Either way every event arrives once: no gap, no repeat.
func TestSinkResumesAMovedWorldAtItsNewHomeWithoutGapOrRepeat(t *testing.T) {
	for _, caughtUp := range []bool{true, false} {
		t.Run(map[bool]string{true: "delivered up to the fence", false: "behind at the move"}[caughtUp], func(t *testing.T) {
			c := newShardCluster(t, 1, Map{
				Membership: 1,
				Shards:     []MapShard{{ID: 1, Voters: []string{"n1"}}, {ID: 2, Voters: []string{"n1"}}},
				Worlds:     map[string]uint64{"arena": 1},
			})
			mgr := c.mgrs["n1"]
			src, _ := mgr.Group(1)
			dst, _ := mgr.Group(2)
			waitLeader(t, src)
			waitLeader(t, dst)
			mm := newMovingMap(c.smap)
			b, err := NewBackend(NewRouterWith(mgr, mm))
			require.NoError(t, err)
			fs := NewFeedSource(b)
			r := newHookReceiver(t)

			mustCreateWorld(t, src, "arena")
			const fence = 10
			for seq := uint64(1); seq <= fence; seq++ {
				act(t, src, incr("arena", "p1", seq, "e1"))
			}
			var hook *webhook.Sink
			if caughtUp {
				hook = startHook(t, r, feed.NewGroupsSource(fs))
				require.Eventually(t, func() bool { return hook.Position("arena") == fence }, 20*time.Second, 5*time.Millisecond)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			// Move, not Manager.MoveWorld: the new home's copy of the
			// archive (CopyMovedArchive) has not run yet.
			at, err := Move(ctx, src, dst, "arena", 2, mm.publish)
			cancel()
			require.NoError(t, err)
			require.Equal(t, uint64(fence), at)
			_, err = dst.Subscribe("arena", 1)
			require.ErrorIs(t, err, store.ErrArchiveGap, "the new home's archive starts after the fence")
			for seq := uint64(fence + 1); seq <= 2*fence; seq++ {
				act(t, dst, incr("arena", "p1", seq, "e1"))
			}
			if !caughtUp {
				hook = startHook(t, r, feed.NewGroupsSource(fs))
			}
			require.Eventually(t, func() bool { return hook.Position("arena") == 2*fence }, 20*time.Second, 5*time.Millisecond)
			require.True(t, r.once("arena", 2*fence), "every event of the world once, from both homes")
		})
	}
}

// When the old home no longer holds the fenced world (dropped, or a group
// this node does not run), the events up to the fence are nowhere on this
// node: the source reports the gap (store.ErrArchiveGap, which the sinks
// count and log) rather than skipping them; from N+1 on it reads the new
// home.
func TestFeedSourceReportsTheGapOfAMovedWorldWhoseOldHomeIsGone(t *testing.T) {
	c := newShardCluster(t, 1, Map{
		Membership: 1,
		Shards:     []MapShard{{ID: 1, Voters: []string{"n1"}}, {ID: 2, Voters: []string{"n1"}}},
		Worlds:     map[string]uint64{"arena": 2},
	})
	mgr := c.mgrs["n1"]
	src, _ := mgr.Group(1)
	dst, _ := mgr.Group(2)
	waitLeader(t, src)
	waitLeader(t, dst)
	mustCreateWorld(t, src, "arena")
	for seq := uint64(1); seq <= 3; seq++ {
		act(t, src, incr("arena", "p1", seq, "e1"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := Move(ctx, src, dst, "arena", 2, nil) // without the archive's copy
	require.NoError(t, err)
	b, err := NewBackend(c.routers["n1"])
	require.NoError(t, err)
	fs := NewFeedSource(b)

	ev, ok := fs.Event("arena", 2)
	require.True(t, ok, "event 2 from the old home while it holds the world")
	require.Equal(t, uint64(2), ev.Seq)
	info, err := src.World("arena")
	require.NoError(t, err)
	_, err = src.DeleteWorld(ctx, "arena", info.Incarnation)
	require.NoError(t, err)

	_, err = fs.Subscribe("arena", 2)
	require.ErrorIs(t, err, store.ErrArchiveGap)
	_, ok = fs.Event("arena", 2)
	require.False(t, ok)
	sub, err := fs.Subscribe("arena", 4)
	require.NoError(t, err, "from the fence's N+1 the new home holds it")
	act(t, dst, incr("arena", "p1", 4, "e1"))
	rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
	defer rcancel()
	evs, err := sub.Next(rctx)
	require.NoError(t, err)
	require.Equal(t, uint64(4), evs[0].Seq)
}
