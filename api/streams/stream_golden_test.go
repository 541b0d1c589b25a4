package streams

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/api/internal/apitest"
	"github.com/gsd-dev/gsd/internal/golden"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/store"
	"github.com/stretchr/testify/require"
)

// The bytes of an NDJSON event stream on a hijacked HTTP/1.1 connection:
// one chunk of event lines as eventStream.write and rawOut send it, then
// the chunk of a stream's last line when it fails (an archive gap). The
// stream writer is driven directly with fixed events; the HTTP header
// (which holds a Date) is not part of it.

// captureConn is a net.Conn that keeps what is written to it.
type captureConn struct {
	net.Conn
	b []byte
}

func (c *captureConn) Write(p []byte) (int, error)      { c.b = append(c.b, p...); return len(p), nil }
func (c *captureConn) SetWriteDeadline(time.Time) error { return nil }

// goldenStreamChunks writes evs as one flushed chunk, then the error line
// of err, and returns the bytes sent on the connection.
func goldenStreamChunks(t *testing.T, evs []*fsm.Event, err error) []byte {
	t.Helper()
	s := &Service{Core: apitest.Core(t, apitest.Unused{}, nil)}
	conn := &captureConn{}
	st := &eventStream{s: s, out: newRawOut(conn), world: "arena", next: evs[0].Seq}
	require.True(t, st.write(context.Background(), evs, nil))
	require.NoError(t, st.out.Flush())
	require.False(t, st.write(context.Background(), nil, err))
	return conn.b
}

func TestGoldenEventStreamChunk(t *testing.T) {
	evs := apitest.GoldenFrameEvents()
	got := goldenStreamChunks(t, evs, fmt.Errorf("%w: world arena seq 18 is no longer archived", store.ErrArchiveGap))
	golden.Binary(t, "stream_chunk.bin", got)
}
