package streams

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// bufOut is a streamOut into a buffer.
type bufOut struct {
	bytes.Buffer
	flushes int
	err     error
}

func (b *bufOut) WriteChunk(c []byte) error {
	b.Buffer.Write(c)
	b.flushes++
	return b.err
}

func (b *bufOut) Flush() error {
	b.flushes++
	return b.err
}

func (b *bufOut) SetWriteDeadline(time.Time) error { return nil }

type sum struct{ adds []float64 }

func (s *sum) Add(v float64) { s.adds = append(s.adds, v) }

// The stream's bytes are counted once per flush, lines and chunks alike.
func TestCountedOutAddsTheBytesOncePerFlush(t *testing.T) {
	inner, to := &bufOut{}, &sum{}
	o := &countedOut{streamOut: inner, to: to}
	_, err := o.Write([]byte("abc\n"))
	require.NoError(t, err)
	_, err = o.Write([]byte("de\n"))
	require.NoError(t, err)
	require.Empty(t, to.adds, "nothing before the flush")
	require.NoError(t, o.Flush())
	require.Equal(t, []float64{7}, to.adds)
	require.NoError(t, o.Flush())
	require.Equal(t, []float64{7}, to.adds, "an empty flush adds nothing")
	require.NoError(t, o.WriteChunk([]byte("chunk\n")))
	require.Equal(t, []float64{7, 6}, to.adds)
	require.Equal(t, "abc\nde\nchunk\n", inner.String())

	inner.err = errors.New("gone")
	require.Error(t, o.Flush())
}
