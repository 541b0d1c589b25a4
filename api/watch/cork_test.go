package watch

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"
)

// readThrough reads c's JSON frames until one at seq or later, and
// returns them as sent.
func readThrough(t *testing.T, c *websocket.Conn, seq uint64) [][]byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out [][]byte
	for {
		_, b, err := c.Read(ctx)
		require.NoError(t, err)
		out = append(out, b)
		var f struct{ Seq uint64 }
		require.NoError(t, json.Unmarshal(b, &f), "%s", b)
		if f.Seq >= seq {
			return out
		}
	}
}

// A spectator joining a view with a backlog (the join keyframe and the
// deltas since) gets it in one socket write after the handshake's, byte
// for byte what a spectator who watched from the start got, as from a
// relay.
func TestWatchSendsAJoinersBacklogInOneWrite(t *testing.T) {
	t.Parallel()
	e := newWatchEnv(t)
	first := e.dial(t, "")
	watched := readThrough(t, first, 0) // the join keyframe
	var seq uint64
	for i := range 4 {
		seq = e.hit(t, int64(i+1))
		watched = append(watched, readThrough(t, first, seq)...) // a delta each: the pipeline ticked between
	}
	require.GreaterOrEqual(t, len(watched), 5, "the keyframe and a delta per hit")

	joiner := e.dial(t, "")
	conns := e.ln.Conns()
	conn := conns[len(conns)-1]
	got := readThrough(t, joiner, seq)
	require.Equal(t, watched, got, "the same frames, the same bytes")
	require.Len(t, conn.Written(), 2, "the handshake, then the backlog of %d frames in one write", len(got))
}
