package pg

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/sink/feed"
	"github.com/gsd-dev/gsd/store"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
)

// playerRow is one row of the players table.
type playerRow struct {
	Version uint64
	Data    map[string]fsm.Value
}

// readPlayers returns a world incarnation's player rows by player (nil
// when the database cannot be read).
func readPlayers(ctx context.Context, dsn, world string, inc int64) (map[string]playerRow, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	rs, err := conn.Query(ctx, `SELECT player, version, data::text FROM gsd.players WHERE world = $1 AND incarnation = $2`, world, inc)
	if err != nil {
		return nil, err
	}
	out := make(map[string]playerRow)
	var (
		player, data string
		version      int64
	)
	_, err = pgx.ForEachRow(rs, []any{&player, &version, &data}, func() error {
		r := playerRow{Version: uint64(version)}
		if err := json.Unmarshal([]byte(data), &r.Data); err != nil {
			return err
		}
		out[player] = r
		return nil
	})
	return out, err
}

// playersOf returns node's players of world as the mirror should hold
// them.
func playersOf(t *testing.T, node *store.Store, world string) map[string]playerRow {
	t.Helper()
	recs, err := node.PlayerRecords(world)
	require.NoError(t, err)
	out := make(map[string]playerRow, len(recs))
	for _, r := range recs {
		d := r.Data
		if d == nil {
			d = map[string]fsm.Value{}
		}
		out[r.Player] = playerRow{Version: r.Version, Data: d}
	}
	return out
}

// requirePlayersMirrored waits until the database's player rows of world
// equal node's players' data and versions.
func requirePlayersMirrored(t *testing.T, dsn string, node *store.Store, world string) {
	t.Helper()
	want := playersOf(t, node, world)
	require.NotEmpty(t, want)
	inc := incarnation(t, node, world)
	var got map[string]playerRow
	require.Eventually(t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var err error
		got, err = readPlayers(ctx, dsn, world, inc)
		return err == nil && fmt.Sprint(got) == fmt.Sprint(want)
	}, 30*time.Second, 10*time.Millisecond, "player rows of %s", world)
	require.Equal(t, want, got)
}

// setData imports a player's data through the leader (the admin import:
// the player's data becomes exactly items).
func (c *cluster) setData(world, player string, items ...fsm.DataItem) {
	c.t.Helper()
	require.Eventually(c.t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err := c.leader().Session(ctx, fsm.CmdSessionImport, &fsm.SessionCmd{World: world, Player: player, Data: items})
		return err == nil
	}, 10*time.Second, 10*time.Millisecond)
}

// versionWatch reads a world's player rows until stopped and records any
// row whose version went down, or whose data changed at the same version.
type versionWatch struct {
	stop func() []string
}

func watchVersions(dsn, world string, inc int64) *versionWatch {
	ctx, cancel := context.WithCancel(context.Background())
	var (
		mu         sync.Mutex
		violations []string
		wg         sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		seen := map[string]playerRow{}
		for ctx.Err() == nil {
			rctx, rcancel := context.WithTimeout(ctx, 2*time.Second)
			rows, err := readPlayers(rctx, dsn, world, inc)
			rcancel()
			if err != nil {
				<-time.After(5 * time.Millisecond) // the database is down: poll pacing
				continue
			}
			for p, r := range rows {
				old, ok := seen[p]
				switch {
				case ok && r.Version < old.Version:
					mu.Lock()
					violations = append(violations, fmt.Sprintf("%s: version %d after %d", p, r.Version, old.Version))
					mu.Unlock()
				case ok && r.Version == old.Version && fmt.Sprint(r.Data) != fmt.Sprint(old.Data):
					mu.Lock()
					violations = append(violations, fmt.Sprintf("%s: data changed at version %d", p, r.Version))
					mu.Unlock()
				}
				seen[p] = r
			}
		}
	}()
	return &versionWatch{stop: func() []string {
		cancel()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		return violations
	}}
}

// The must-show for player data: set, changed, deleted, with the
// sink and then the database killed mid-way; the mirror equals the
// world's player data and no row ever goes backwards.
func TestPlayerDataMirrorEqualsTheWorldThroughSinkAndDatabaseRestarts(t *testing.T) {
	pg, dsn := startPG(t)
	c := newCluster(t, 1)
	c.createWorld("w")
	node := c.nodes[0]
	for i := range 5 {
		c.setData("w", fmt.Sprintf("p%d", i), fsm.DataItem{Key: "gold", Value: fsm.Int(int64(i))}, fsm.DataItem{Key: "title", Value: fsm.String("squire")})
	}
	cfg := testConfig(dsn)
	r1 := runSink(t, cfg, NewStoreSource(node))
	requirePlayersMirrored(t, dsn, node, "w")
	watch := watchVersions(dsn, "w", incarnation(t, node, "w"))

	// Changed while the sink runs, then while it is stopped.
	c.setData("w", "p0", fsm.DataItem{Key: "gold", Value: fsm.Int(100)})
	requirePlayersMirrored(t, dsn, node, "w")
	r1.stop()
	c.setData("w", "p1", fsm.DataItem{Key: "gold", Value: fsm.Int(101)})
	c.setData("w", "p2") // every key deleted: the row keeps {} at a newer version
	c.setData("w", "p5", fsm.DataItem{Key: "vip", Value: fsm.Bool(true)})
	r2 := runSink(t, cfg, NewStoreSource(node))
	requirePlayersMirrored(t, dsn, node, "w")
	require.Equal(t, map[string]fsm.Value{}, playersOf(t, node, "w")["p2"].Data)

	// The database dies mid-way: changes meanwhile are written once it is back.
	pg.Kill(t)
	c.setData("w", "p3", fsm.DataItem{Key: "gold", Value: fsm.Int(103)})
	require.Eventually(t, func() bool { return r2.gauge("gsd_pgsink_errors_total", "kind", "database") > 0 }, 30*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool { return r2.gauge("gsd_pgsink_players_pending", "world", "w") > 0 }, 30*time.Second, 10*time.Millisecond)
	pg.Restart(t)
	c.setData("w", "p4", fsm.DataItem{Key: "gold", Value: fsm.Int(104)})
	requirePlayersMirrored(t, dsn, node, "w")
	require.Eventually(t, func() bool { return r2.gauge("gsd_pgsink_players_pending", "world", "w") == 0 }, 30*time.Second, 10*time.Millisecond)
	require.Positive(t, r2.gauge("gsd_pgsink_player_rows_written_total"))
	require.Empty(t, watch.stop(), "rows that went backwards")
}

// A row is replaced only by a newer version: a late or repeated write of
// an older one leaves it alone.
func TestOlderPlayerDataNeverReplacesANewerRow(t *testing.T) {
	_, dsn := startPG(t)
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, dsn)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	_, err = migrate(ctx, pool, "gsd")
	require.NoError(t, err)
	d := newDB(pool, "gsd", 10*time.Second)
	write := func(version uint64, gold int64) int64 {
		var r playerRows
		require.NoError(t, r.add(fsm.PlayerRecord{Player: "ann", Version: version, Data: map[string]fsm.Value{"gold": fsm.Int(gold)}}))
		n, err := d.writePlayers(ctx, "w", 7, &r)
		require.NoError(t, err)
		return n
	}
	require.Equal(t, int64(1), write(5, 50))
	require.Equal(t, int64(0), write(4, 40), "older")
	require.Equal(t, int64(0), write(5, 51), "the same version again")
	got, err := readPlayers(ctx, dsn, "w", 7)
	require.NoError(t, err)
	require.Equal(t, map[string]playerRow{"ann": {Version: 5, Data: map[string]fsm.Value{"gold": fsm.Int(50)}}}, got)
	require.Equal(t, int64(1), write(6, 60))
	versions, err := d.playerVersions(ctx, "w", 7)
	require.NoError(t, err)
	require.Equal(t, map[string]uint64{"ann": 6}, versions)

	// Version 0 (data restored from a snapshot without versions) is
	// written where no row is, and never over one; NULs, which text and
	// jsonb cannot hold, become U+FFFD.
	var r0 playerRows
	require.NoError(t, r0.add(fsm.PlayerRecord{Player: "cat\x00", Version: 0, Data: map[string]fsm.Value{"title": fsm.String("a\x00b")}}))
	require.NoError(t, r0.add(fsm.PlayerRecord{Player: "ann", Version: 0}))
	n, err := d.writePlayers(ctx, "w", 7, &r0)
	require.NoError(t, err)
	require.Equal(t, int64(1), n)
	got, err = readPlayers(ctx, dsn, "w", 7)
	require.NoError(t, err)
	require.Equal(t, map[string]playerRow{
		"ann":       {Version: 6, Data: map[string]fsm.Value{"gold": fsm.Int(60)}},
		"cat\uFFFD": {Version: 0, Data: map[string]fsm.Value{"title": fsm.String("a\uFFFDb")}},
	}, got)

	var r playerRows
	require.ErrorContains(t, r.add(fsm.PlayerRecord{Player: "bob", Version: 1 << 63}), "bigint")
}

// A deleted world's rows stay under its incarnation; the world created
// again is mirrored beside them.
func TestRecreatedWorldsPlayerDataIsMirroredBesideTheOldRows(t *testing.T) {
	_, dsn := startPG(t)
	c := newCluster(t, 1)
	node := c.nodes[0]
	c.createWorld("w")
	c.setData("w", "ann", fsm.DataItem{Key: "gold", Value: fsm.Int(1)})
	r := runSink(t, testConfig(dsn), NewStoreSource(node))
	requirePlayersMirrored(t, dsn, node, "w")
	old := incarnation(t, node, "w")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	info, err := node.World("w")
	require.NoError(t, err)
	_, err = node.DeleteWorld(ctx, "w", info.Incarnation)
	require.NoError(t, err)
	c.createWorld("w")
	c.setData("w", "bob", fsm.DataItem{Key: "gold", Value: fsm.Int(2)})
	requirePlayersMirrored(t, dsn, node, "w")
	require.NotEqual(t, old, incarnation(t, node, "w"))
	rows, err := readPlayers(ctx, dsn, "w", old)
	require.NoError(t, err)
	require.Contains(t, rows, "ann", "the deleted world's rows stay")
	r.stop()
}

// A source that does not read player data mirrors events only.
func TestSourceWithoutPlayerDataMirrorsEventsOnly(t *testing.T) {
	src := newFakeSource()
	s, err := New(testConfig("postgres://localhost/x"), src, nil)
	require.NoError(t, err)
	require.Nil(t, s.players)
}

// Leadership moves while players' data keeps changing: the new leader's
// sink takes the world over from the rows' versions, and no row goes
// backwards even while both nodes' sinks may write.
func TestPlayerDataMirrorFollowsTheLeaderAcrossFailover(t *testing.T) {
	_, dsn := startPG(t)
	c := newCluster(t, 3)
	c.createWorld("w")
	c.setData("w", "p0", fsm.DataItem{Key: "gold", Value: fsm.Int(0)})
	cfg := testConfig(dsn)
	for _, n := range c.nodes {
		runSink(t, cfg, NewStoreSource(n))
	}
	requirePlayersMirrored(t, dsn, c.leader(), "w")
	watch := watchVersions(dsn, "w", incarnation(t, c.leader(), "w"))

	// A writer changes players' data until stopped.
	var written atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for n := 0; ; {
			select {
			case <-stop:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			if l := c.leaderNow(); l != nil {
				p := fmt.Sprintf("p%d", n%4)
				if _, err := l.Session(ctx, fsm.CmdSessionImport, &fsm.SessionCmd{World: "w", Player: p, Data: []fsm.DataItem{{Key: "gold", Value: fsm.Int(int64(n))}}}); err == nil {
					n++
					written.Store(int64(n))
				}
			}
			cancel()
			<-time.After(2 * time.Millisecond) // write pacing
		}
	}()
	first := c.leader()
	require.Eventually(t, func() bool {
		rows, err := readPlayers(context.Background(), dsn, "w", incarnation(t, first, "w"))
		return err == nil && len(rows) == 4
	}, 30*time.Second, 10*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	require.NoError(t, first.TransferLeadership(ctx))
	cancel()
	require.Eventually(t, func() bool { l := c.leaderNow(); return l != nil && l != first }, 10*time.Second, 10*time.Millisecond)
	at := written.Load()
	require.Eventually(t, func() bool { return written.Load() > at+20 }, 30*time.Second, 10*time.Millisecond, "writes under the new leader")
	close(stop)
	<-done

	requirePlayersMirrored(t, dsn, c.leader(), "w")
	require.Empty(t, watch.stop(), "rows that went backwards")
}

// playerFake is a fake source with players' data the test sets, counting
// the sink's reads of it.
type playerFake struct {
	*fakeSource
	mu    sync.Mutex
	recs  []fsm.PlayerRecord
	stamp uint64
	reads atomic.Int64
}

func (f *playerFake) set(recs ...fsm.PlayerRecord) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.recs = recs
	for _, r := range recs {
		f.stamp += r.Version
	}
}

func (f *playerFake) PlayerRecords(world string) ([]fsm.PlayerRecord, error) {
	f.reads.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fsm.PlayerRecord(nil), f.recs...), nil
}

func (f *playerFake) PlayerDataStamp(world string) (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stamp, nil
}

// An unchanged world's players are not read at every check, only at
// every fullEvery-th; a change is read at the next check.
func TestUnchangedPlayerDataIsNotReadAtEveryCheck(t *testing.T) {
	_, dsn := startPG(t)
	ctx := context.Background()
	src := &playerFake{fakeSource: newFakeSource()}
	src.Add("w", 1, 1000)
	src.set(fsm.PlayerRecord{Player: "ann", Version: 5, Data: map[string]fsm.Value{"gold": fsm.Int(1)}})
	s, err := New(testConfig(dsn), src, nil)
	require.NoError(t, err)
	pool, err := pgxpool.New(ctx, dsn)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	_, err = migrate(ctx, pool, "gsd")
	require.NoError(t, err)
	s.db = newDB(pool, "gsd", 10*time.Second)
	pw := &playerWorld{inc: src.Incarnation("w")}
	check := func() {
		t.Helper()
		require.NoError(t, s.players.world(ctx, "w", pw))
	}
	check()
	require.Zero(t, src.reads.Load(), "no events mirror has resumed the world: nothing read")
	m := &mirror{s: s, world: "w"}
	s.mirrors.Store("w", m)
	require.NoError(t, m.Resume(ctx, feed.Position{Incarnation: pw.inc + 1}))
	check()
	require.Zero(t, src.reads.Load(), "another incarnation resumed: nothing read")
	require.NoError(t, m.Resume(ctx, feed.Position{Incarnation: pw.inc}))
	check = func() {
		t.Helper()
		require.NoError(t, s.players.world(ctx, "w", pw))
	}

	check()
	require.Equal(t, int64(1), src.reads.Load())
	for range fullEvery {
		check()
	}
	require.Equal(t, int64(1), src.reads.Load(), "unchanged: not read again")
	check()
	require.Equal(t, int64(2), src.reads.Load(), "every fullEvery-th check reads anyway")

	src.set(fsm.PlayerRecord{Player: "ann", Version: 6, Data: map[string]fsm.Value{"gold": fsm.Int(2)}})
	check()
	require.Equal(t, int64(3), src.reads.Load(), "a change is read at the next check")
	rows, err := readPlayers(ctx, dsn, "w", pw.inc)
	require.NoError(t, err)
	require.Equal(t, map[string]playerRow{"ann": {Version: 6, Data: map[string]fsm.Value{"gold": fsm.Int(2)}}}, rows)

	// Not leading any more: nothing is written, and the next check reads.
	src.SetLeads("w", false)
	src.set(fsm.PlayerRecord{Player: "ann", Version: 7, Data: map[string]fsm.Value{"gold": fsm.Int(3)}})
	check()
	require.False(t, pw.stampOK)
	rows, err = readPlayers(ctx, dsn, "w", pw.inc)
	require.NoError(t, err)
	require.Equal(t, uint64(6), rows["ann"].Version)
}

// A game server's merge and a player's own write through their session
// (fsm.CmdSessionData, log version 11) reach the mirror like imports: the
// row follows each change at its new version.
func TestServerAndPlayerDataWritesAreMirrored(t *testing.T) {
	_, dsn := startPG(t)
	c := newCluster(t, 1)
	node := c.nodes[0]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rules := fsm.Rules{Schema: fsm.Schema{PlayerData: fsm.PlayerDataRule{PlayerWritable: []string{"loadout"}}}}
	require.NoError(t, node.CreateWorld(ctx, "w", rules))
	_, err := node.Session(ctx, fsm.CmdSessionOpen, &fsm.SessionCmd{World: "w", ID: "s1", Player: "ann", TokenHash: [fsm.TokenHashLen]byte{1}})
	require.NoError(t, err)
	_, err = node.Session(ctx, fsm.CmdSessionData, &fsm.SessionCmd{World: "w", Player: "ann", Data: []fsm.DataItem{{Key: "gold", Value: fsm.Int(40)}}})
	require.NoError(t, err)
	runSink(t, testConfig(dsn), NewStoreSource(node))
	requirePlayersMirrored(t, dsn, node, "w")

	_, err = node.Session(ctx, fsm.CmdSessionData, &fsm.SessionCmd{World: "w", ID: "s1", Player: "ann", Data: []fsm.DataItem{{Key: "loadout", Value: fsm.String("sniper")}}})
	require.NoError(t, err)
	requirePlayersMirrored(t, dsn, node, "w")
	require.Equal(t, map[string]fsm.Value{"gold": fsm.Int(40), "loadout": fsm.String("sniper")}, playersOf(t, node, "w")["ann"].Data)
}
