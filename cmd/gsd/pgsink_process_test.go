//go:build linux

package main

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/client"
	"github.com/gsd-dev/gsd/internal/pgtest"
	"github.com/gsd-dev/gsd/wire"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

// The must-show over real processes: SIGKILL the leading gsd and
// kill the database mid-stream, restart both, and the mirror equals the
// world: every event once, no other.
func TestProcessClusterPGSinkSurvivesLeaderAndDatabaseKills(t *testing.T) {
	if testing.Short() {
		t.Skip("process cluster test in -short mode")
	}
	pgs := pgtest.Start(t)
	dsn := pgs.DSN("postgres")
	pc := newProcCluster(t)
	n1 := pc.add("n1", "--pg-sink-dsn", dsn)
	n2 := pc.add("n2", "--pg-sink-dsn", dsn, "--join", n1.http)
	n3 := pc.add("n3", "--pg-sink-dsn", dsn, "--join", n2.http+","+n1.http)
	nodes := []*proc{n1, n2, n3}
	pc.start(n1, false)
	pc.waitStatus(n1, "leads", func(s client.Status) bool { return s.State == "leader" && s.LeaderHTTP != "" })
	pc.start(n2, false)
	pc.start(n3, false)
	for _, p := range nodes {
		pc.waitStatus(p, "sees three voters and a leader", func(s client.Status) bool { return len(s.Servers) == 3 && s.Leader != "" })
	}
	cl := client.New([]string{n1.http, n2.http, n3.http}, client.WithBackoff(10*time.Millisecond, 250*time.Millisecond), client.WithAttemptTimeout(5*time.Second))
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	require.NoError(t, cl.CreateWorld(ctx, "arena", wire.Rules{}))

	acked, stopWriter := arenaWriter(t, ctx, cl)
	conn, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err)
	mirrored := func() int64 {
		var seq int64
		if err := conn.QueryRow(ctx, `SELECT coalesce(max(seq), 0) FROM gsd.worlds WHERE world = 'arena'`).Scan(&seq); err != nil {
			return -1
		}
		return seq
	}
	progress := func(what string) {
		t.Helper()
		target := mirrored() + 50
		require.Eventually(t, func() bool { return mirrored() >= target }, 2*time.Minute, 20*time.Millisecond, what)
	}

	progress("mirror starts")
	st, err := cl.Status(ctx)
	require.NoError(t, err)
	var leader *proc
	for _, p := range nodes {
		if p.id == st.Leader {
			leader = p
		}
	}
	require.NotNil(t, leader)
	pc.kill(leader) // SIGKILL the node that writes the mirror
	progress("a new leader's sink resumes")

	conn.Close(ctx)
	pgs.Kill(t)
	at := acked.Load()
	require.Eventually(t, func() bool { return acked.Load() >= at+50 }, 2*time.Minute, 20*time.Millisecond, "the game goes on without its database")
	pgs.Restart(t)
	conn, err = pgx.Connect(ctx, dsn)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	progress("the sink catches up after the database restarts")

	pc.start(leader, true)
	pc.waitStatus(leader, "rejoined", func(s client.Status) bool { return s.Leader != "" && len(s.Servers) == 3 })
	stopWriter()

	// The world's events, as the cluster serves them, once every node
	// has applied the same head (a node's answer may lag the leader's).
	var head, inc uint64
	require.Eventually(t, func() bool {
		seqs := map[uint64]bool{}
		for _, p := range nodes {
			c := p.client()
			ws, err := c.Worlds(ctx)
			c.Close()
			if err != nil || len(ws) != 1 {
				return false
			}
			seqs[ws[0].Seq] = true
			head, inc = ws[0].Seq, ws[0].Incarnation
		}
		return len(seqs) == 1
	}, time.Minute, 20*time.Millisecond, "nodes agree on the head")
	require.Eventually(t, func() bool { return mirrored() >= int64(head) }, 2*time.Minute, 20*time.Millisecond, "mirror reaches seq %d", head)
	events := arenaEvents(t, ctx, cl, head)

	rows, err := conn.Query(ctx, `SELECT seq, raft_index, time_ns, player, client_seq::text, priority, status, reason, changes::text
		FROM gsd.events WHERE world = 'arena' AND incarnation = $1 ORDER BY seq`, int64(inc)) // the listing's incarnation
	require.NoError(t, err)
	defer rows.Close()
	n := 0
	for rows.Next() {
		var seq, index, timeNs int64
		var player, clientSeq, priority, status, reason, changes string
		require.NoError(t, rows.Scan(&seq, &index, &timeNs, &player, &clientSeq, &priority, &status, &reason, &changes))
		require.LessOrEqual(t, uint64(seq), head, "a row past the head")
		ev := events[n]
		require.Equal(t, ev.Seq, uint64(seq), "row %d", n)
		require.Equal(t, []any{ev.Index, ev.Time, ev.Player, ev.ClientSeq, ev.Priority, ev.Status, ev.Reason},
			[]any{uint64(index), timeNs, player, mustUint(t, clientSeq), priority, status, reason}, "seq %d", seq)
		want, err := json.Marshal(ev.Changes)
		require.NoError(t, err)
		require.JSONEq(t, string(want), changes, "seq %d", seq)
		n++
	}
	require.NoError(t, rows.Err())
	rows.Close()
	require.Equal(t, int(head), n, "rows of seqs 1..%d", head)
	var total int
	require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM gsd.events WHERE world = 'arena'`).Scan(&total))
	require.Equal(t, int(head), total, "no row of another incarnation or twice")
	t.Logf("mirrored %d events; %d actions acknowledged", head, acked.Load())
}

func mustUint(t *testing.T, s string) uint64 {
	t.Helper()
	var n uint64
	require.NoError(t, json.Unmarshal([]byte(s), &n))
	return n
}
