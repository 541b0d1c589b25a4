package shard

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/internal/pgtest"
	"github.com/gsd-dev/gsd/sink/feed"
	"github.com/gsd-dev/gsd/sink/pg"
	"github.com/gsd-dev/gsd/sink/webhook"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

// A world moved to a shard whose only voter is another node: the pg
// mirror, run by every node over its own groups, goes on at the new home
// from the position stored with the rows (the database is the one both
// nodes write), so every event is mirrored once under the world's one
// incarnation, the old home's node writing those up to the fence and the
// new home's node the rest, neither writing a row the other wrote. The
// new home's copy of the old home's archive (what the node-to-node move
// fills) lets the new node check the stored position against the event
// at the fence before it goes on.
func TestPGMirrorFollowsAWorldMovedToAShardOnAnotherNode(t *testing.T) {
	for _, copied := range []bool{true, false} {
		t.Run(map[bool]string{true: "archive copied", false: "archive not copied yet"}[copied], func(t *testing.T) {
			c := newShardCluster(t, 2, Map{
				Membership: 3, // on both nodes, holding no world
				Shards:     []MapShard{{ID: 1, Voters: []string{"n1"}}, {ID: 2, Voters: []string{"n2"}}, {ID: 3, Voters: []string{"n1", "n2"}}},
				Worlds:     map[string]uint64{"arena": 1},
			})
			src, _ := c.mgrs["n1"].Group(1)
			dst, _ := c.mgrs["n2"].Group(2)
			waitLeader(t, src)
			waitLeader(t, dst)
			mm := newMovingMap(c.smap)

			srv := pgtest.Start(t) // skips with a reason when PostgreSQL cannot start
			dsn := srv.DSN("postgres")
			regs := map[string]*prometheus.Registry{}
			for _, id := range c.ids {
				b, err := NewBackend(NewRouterWith(c.mgrs[id], mm))
				require.NoError(t, err)
				fs := NewFeedSource(b)
				cfg := pg.DefaultConfig()
				cfg.DSN, cfg.BatchSize, cfg.CheckInterval = dsn, 8, 20*time.Millisecond
				cfg.RetryMin, cfg.RetryMax, cfg.Logger = 10*time.Millisecond, 100*time.Millisecond, slog.New(slog.DiscardHandler)
				regs[id] = prometheus.NewRegistry()
				s, err := pg.New(cfg, pg.WithPlayers(feed.NewGroupsSource(fs), fs), regs[id])
				require.NoError(t, err)
				runUntilCleanup(t, s.Run)
			}

			mustCreateWorld(t, src, "arena")
			info, err := src.World("arena")
			require.NoError(t, err)
			const fence = 20
			for seq := uint64(1); seq <= fence; seq++ {
				act(t, src, incr("arena", "p1", seq, "e1"))
			}
			require.Eventually(t, func() bool { return mirroredSeqs(dsn, "arena") == fence }, 30*time.Second, 10*time.Millisecond)

			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			at, err := Move(ctx, src, dst, "arena", 2, mm.publish)
			require.NoError(t, err)
			require.Equal(t, uint64(fence), at)
			if copied {
				_, err = CopyMovedArchive(ctx, dst, ArchiveOf(src, "arena"), "arena", at, MovedArchivePage)
				require.NoError(t, err)
			}
			cancel()
			for seq := uint64(fence + 1); seq <= 2*fence; seq++ {
				act(t, dst, incr("arena", "p1", seq, "e1"))
			}
			require.Eventually(t, func() bool { return mirroredSeqs(dsn, "arena") == 2*fence }, 30*time.Second, 10*time.Millisecond,
				"the new home's node mirrors the events after the fence")

			rows, incs := mirroredRows(t, dsn, "arena")
			require.Equal(t, 2*fence, rows, "each event once")
			require.Equal(t, []int64{int64(info.Incarnation)}, incs, "under the world's one incarnation")
			require.Equal(t, float64(fence), counter(t, regs["n1"], "gsd_pgsink_events_inserted_total"), "the old home's node: up to the fence")
			require.Equal(t, float64(fence), counter(t, regs["n2"], "gsd_pgsink_events_inserted_total"), "the new home's node: after it")
			require.Zero(t, counter(t, regs["n2"], "gsd_pgsink_errors_total", "kind", "incarnation"), "the new node trusted the stored position")
		})
	}
}

// The webhook export across the same move is at least once, not exactly
// once: its positions (the node's file, and gsd.sinks of the world's
// group) do not travel with the world, so the new home's node, which has
// neither, sends the events up to the fence again once its archive holds
// them. Nothing is missing, and each event after the fence comes once.
func TestWebhookExportFollowsAWorldMovedToAShardOnAnotherNodeAtLeastOnce(t *testing.T) {
	c := newShardCluster(t, 2, Map{
		Membership: 3, // on both nodes, holding no world
		Shards:     []MapShard{{ID: 1, Voters: []string{"n1"}}, {ID: 2, Voters: []string{"n2"}}, {ID: 3, Voters: []string{"n1", "n2"}}},
		Worlds:     map[string]uint64{"arena": 1},
	})
	src, _ := c.mgrs["n1"].Group(1)
	dst, _ := c.mgrs["n2"].Group(2)
	waitLeader(t, src)
	waitLeader(t, dst)
	mm := newMovingMap(c.smap)
	r := newHookReceiver(t)
	for _, id := range c.ids {
		b, err := NewBackend(NewRouterWith(c.mgrs[id], mm))
		require.NoError(t, err)
		fs := NewFeedSource(b)
		rep, err := feed.NewReplicated(feed.ReplicatedConfig{Sink: "webhook", Writer: id, Every: 1, Interval: time.Millisecond},
			func(w string) (feed.PositionGroup, error) { return fs.Group(w) })
		require.NoError(t, err)
		startHookWith(t, r, feed.NewGroupsSource(fs), rep)
	}
	mustCreateWorld(t, src, "arena")
	const fence = 20
	for seq := uint64(1); seq <= fence; seq++ {
		act(t, src, incr("arena", "p1", seq, "e1"))
	}
	require.Eventually(t, func() bool { return r.once("arena", fence) }, 30*time.Second, 10*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	at, err := Move(ctx, src, dst, "arena", 2, mm.publish)
	require.NoError(t, err)
	_, err = CopyMovedArchive(ctx, dst, ArchiveOf(src, "arena"), "arena", at, MovedArchivePage)
	require.NoError(t, err)
	cancel()
	for seq := uint64(fence + 1); seq <= 2*fence; seq++ {
		act(t, dst, incr("arena", "p1", seq, "e1"))
	}
	require.Eventually(t, func() bool { return r.has("arena", 2*fence) }, 30*time.Second, 10*time.Millisecond)
	require.False(t, r.beyond("arena", 2*fence))
	r.mu.Lock()
	defer r.mu.Unlock()
	for seq := uint64(1); seq <= 2*fence; seq++ {
		n := r.got["arena"][seq]
		if seq > fence {
			require.Equal(t, 1, n, "event %d after the fence", seq)
		} else {
			require.LessOrEqual(t, n, 2, "event %d up to the fence: once per home at most", seq)
		}
	}
}

// startHookWith is startHook with replicated positions.
func startHookWith(t *testing.T, r *hookReceiver, src feed.Source, rep *feed.Replicated) *webhook.Sink {
	t.Helper()
	cfg := webhook.DefaultConfig()
	cfg.URL, cfg.KeyID, cfg.Secret, cfg.Dir = r.srv.URL, "k1", hookSecret, t.TempDir()
	cfg.BatchSize, cfg.Linger, cfg.CheckInterval = 16, time.Millisecond, 10*time.Millisecond
	cfg.RetryMin, cfg.RetryMax, cfg.Timeout = time.Millisecond, 20*time.Millisecond, 2*time.Second
	cfg.Logger, cfg.Positions = slog.New(slog.DiscardHandler), rep
	s, err := webhook.New(cfg, src, nil)
	require.NoError(t, err)
	runUntilCleanup(t, s.Run)
	return s
}

// mirroredRows returns the pg mirror's row count of world and its
// incarnations.
func mirroredRows(t *testing.T, dsn, world string) (int, []int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err)
	defer conn.Close(ctx)
	var n int
	require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM gsd.events WHERE world = $1`, world).Scan(&n))
	rs, err := conn.Query(ctx, `SELECT DISTINCT incarnation FROM gsd.events WHERE world = $1 ORDER BY 1`, world)
	require.NoError(t, err)
	incs, err := pgx.CollectRows(rs, pgx.RowTo[int64])
	require.NoError(t, err)
	return n, incs
}

// counter returns the sum of a counter's series in reg whose labels
// include the label pairs given (0: none).
func counter(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	var v float64
	for _, mf := range mfs {
		if mf.GetName() == name {
		series:
			for _, m := range mf.GetMetric() {
				for i := 0; i+1 < len(labels); i += 2 {
					found := false
					for _, lp := range m.GetLabel() {
						found = found || lp.GetName() == labels[i] && lp.GetValue() == labels[i+1]
					}
					if !found {
						continue series
					}
				}
				v += m.GetCounter().GetValue()
			}
		}
	}
	return v
}
