package main

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/internal/pgtest"
	"github.com/gsd-dev/gsd/wire"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

func TestRunWithPGSinkDSNMirrorsCommittedEvents(t *testing.T) {
	t.Parallel()
	pgs := pgtest.Start(t)
	dsn := pgs.DSN("postgres")
	n := startNode(t, "pg1", t.TempDir(), "--pg-sink-dsn", dsn, "--pg-sink-worlds", "arena", "--pg-sink-schema", "studio")
	n.waitLeader(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := n.client(t)
	require.NoError(t, c.CreateWorld(ctx, "arena", wire.Rules{}))
	require.NoError(t, c.CreateWorld(ctx, "lobby", wire.Rules{}))
	for i := range 5 {
		_, err := c.Act(ctx, "arena", incr("p1", uint64(i+1), "e1", 1))
		require.NoError(t, err)
		_, err = c.Act(ctx, "lobby", incr("p1", uint64(i+1), "e1", 1))
		require.NoError(t, err)
	}

	conn, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	count := func(world string) int {
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM studio.events WHERE world = $1`, world).Scan(&n); err != nil {
			return -1
		}
		return n
	}
	require.Eventually(t, func() bool { return count("arena") == 5 }, 30*time.Second, 20*time.Millisecond)
	require.Zero(t, count("lobby"), "--pg-sink-worlds leaves other worlds out")
	var seq int64
	require.NoError(t, conn.QueryRow(ctx, `SELECT seq FROM studio.worlds WHERE world = 'arena'`).Scan(&seq))
	require.Equal(t, int64(5), seq)

	require.Equal(t, 0, n.stop(t))
	requireContains(t, n.stderr.String(), "pg sink on", "schema ready")
}

func TestRunRejectsBadPGSinkFlags(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"bad dsn", []string{"--pg-sink-dsn", "postgres://u@h:notaport/db"}, "--pg-sink-*"},
		{"bad schema", []string{"--pg-sink-dsn", "host=/tmp", "--pg-sink-schema", "No Such"}, "schema"},
		{"worlds without dsn", []string{"--pg-sink-worlds", "a"}, "--pg-sink-worlds needs --pg-sink-dsn"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			code := run(context.Background(), tc.args, io.Discard, &stderr)
			require.Equal(t, 1, code, stderr.String())
			requireContains(t, stderr.String(), tc.want)
		})
	}
}
