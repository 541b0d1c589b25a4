package play

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/gsd-dev/gsd/api/edge"
)

// Corked writes. Each WebSocket message the library writes ends in a flush
// to the socket, and on loopback or a LAN one write syscall costs more
// than encoding the frame (the kernel runs the TCP path and wakes the
// reader). So a play connection's socket is a corkConn: its writer corks
// it, writes every message it has (control messages, then the outbox's
// frames) and uncorks, which sends them all in one write. Under load more
// piles up between two wakes, so a busy node makes fewer, bigger writes.
// The writer frames its messages itself (writeMessage) rather than going
// through the library's write path for each.
//
// The socket gets to the library through the upgrade: corkHijack hands
// websocket.Accept the corkConn when it hijacks the HTTP connection.

// corkLimit: a cork holding this many bytes writes them out before taking
// more, so one batch never holds more than about this much memory.
const corkLimit = 64 << 10

// corkConn is a net.Conn whose writes, while corked, collect in memory
// and go to the socket together when it is uncorked. Writes from other
// goroutines (the library's close frame) during a cork join the batch,
// which the writer always uncorks at once.
type corkConn struct {
	net.Conn
	// timeout bounds the write of one batch: the socket's write deadline
	// is set timeout ahead again only once the last one set is
	// timeout/deadlineSlack old (setting it costs a runtime timer update
	// per write), so a write has between (1-1/deadlineSlack)·timeout and
	// timeout.
	timeout time.Duration
	setAt   time.Time // when the write deadline was last set

	mu     sync.Mutex
	corked bool
	buf    []byte
	err    error // a failed flush: every later write fails with it

	// What went to the socket: write calls and their bytes (the
	// writers' ruler, writers_ruler_test.go, counts per delivery).
	writes, bytes uint64
}

func (c *corkConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	if !c.corked {
		return c.write(p)
	}
	c.buf = append(c.buf, p...)
	if len(c.buf) >= corkLimit {
		if err := c.flush(); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// deadlineSlack: see corkConn.timeout.
const deadlineSlack = 16

// write writes p to the socket within the timeout. c.mu is held.
func (c *corkConn) write(p []byte) (int, error) {
	if c.timeout > 0 {
		if now := time.Now(); now.Sub(c.setAt) >= c.timeout/deadlineSlack {
			if err := c.Conn.SetWriteDeadline(now.Add(c.timeout)); err != nil {
				c.err = err
				return 0, err
			}
			c.setAt = now
		}
	}
	n, err := c.Conn.Write(p)
	c.writes++
	c.bytes += uint64(n)
	if err != nil {
		c.err = err
	}
	return n, err
}

// written returns the write calls made to the socket and their bytes.
func (c *corkConn) written() (writes, bytes uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writes, c.bytes
}

// idle reports whether no batch is corked (none is being written).
func (c *corkConn) idle() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.corked
}

// flush writes the corked bytes. c.mu is held.
func (c *corkConn) flush() error {
	if len(c.buf) == 0 {
		return nil
	}
	_, err := c.write(c.buf)
	if cap(c.buf) > corkLimit*2 {
		c.buf = nil // do not keep a rare big batch's memory per connection
	} else {
		c.buf = c.buf[:0]
	}
	return err
}

// writeMessage writes one WebSocket data message of type typ carrying p
// as a single unmasked, uncompressed frame (RFC 6455 5.2), the bytes the
// library would write for it, straight into the cork (or to the socket
// when not corked): a play writer's messages skip the library's write
// path (its locks, context checks and bufio flush per message), which
// costs about as much as copying the frame. The library still writes its
// control frames (pongs, the close frame) through Write, each in one call,
// so that frames never interleave; done is the connection's context,
// cancelled before its close frame is written (playConn.run): a message
// that finds it cancelled is refused, so that none follows the close
// frame.
func (c *corkConn) writeMessage(done context.Context, typ websocket.MessageType, p []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return c.err
	}
	if err := done.Err(); err != nil {
		return fmt.Errorf("the connection is closing: %w", net.ErrClosed)
	}
	c.buf = appendFrameHeader(c.buf, typ, len(p))
	c.buf = append(c.buf, p...)
	if !c.corked || len(c.buf) >= corkLimit {
		return c.flush()
	}
	return nil
}

// appendFrameHeader appends the header of a final, unmasked data frame of
// type typ with an n-byte payload.
func appendFrameHeader(b []byte, typ websocket.MessageType, n int) []byte {
	b = append(b, 0x80|byte(typ))
	switch {
	case n < 126:
		return append(b, byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, 126), uint16(n))
	}
	return binary.BigEndian.AppendUint64(append(b, 127), uint64(n))
}

// cork makes writes collect until uncork.
func (c *corkConn) cork() {
	c.mu.Lock()
	c.corked = true
	c.mu.Unlock()
}

// uncork writes what the cork collected, in one write.
func (c *corkConn) uncork() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.corked = false
	return c.flush()
}

// corkHijack is the ResponseWriter given to websocket.Accept: its Hijack
// wraps the connection in a corkConn (cc, once hijacked).
type corkHijack struct {
	http.ResponseWriter
	timeout time.Duration
	cc      *corkConn
}

func (h *corkHijack) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	// net/http hands over a fresh writer: nothing is buffered in it.
	h.cc = &corkConn{Conn: conn, timeout: h.timeout}
	return h.cc, bufio.NewReadWriter(brw.Reader, bufio.NewWriter(h.cc)), nil
}

// Unwrap lets http.ResponseController reach the server's ResponseWriter.
func (h *corkHijack) Unwrap() http.ResponseWriter { return h.ResponseWriter }

// writeCorked writes one message while the socket is corked: it only
// goes to memory, so it needs no timeout of its own (the batch's write
// has one).
func (c *playConn) writeCorked(b []byte) bool {
	if err := c.cork.writeMessage(c.ctx, c.codec.messageType(), b); err != nil {
		c.fail(fmt.Errorf("%w: write: %v", edge.ErrSlowConsumer, err))
		return false
	}
	return true
}

// write writes one message within WriteTimeout; false (and the connection
// failed) when it could not.
func (c *playConn) write(b []byte) bool {
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.WriteTimeout)
	defer cancel()
	if err := c.ws.Write(ctx, c.codec.messageType(), b); err != nil {
		c.fail(fmt.Errorf("%w: write: %v", edge.ErrSlowConsumer, err))
		return false
	}
	return true
}
