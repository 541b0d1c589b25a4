package play

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gsd-dev/gsd/api/edge"
)

// Corked writes. Each WebSocket message the library writes ends in a flush
// to the socket, and on loopback or a LAN one write syscall costs more
// than encoding the frame (the kernel runs the TCP path and wakes the
// reader). So a play connection's socket is a corkConn: its writer corks
// it, writes every message it has (control messages, then the outbox's
// frames) and uncorks, which sends them all in one write. Under load more
// piles up between two wakes, so a busy node makes fewer, bigger writes.
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
	timeout time.Duration // bounds the write of one batch

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

// write writes p to the socket within the timeout. c.mu is held.
func (c *corkConn) write(p []byte) (int, error) {
	if c.timeout > 0 {
		if err := c.Conn.SetWriteDeadline(time.Now().Add(c.timeout)); err != nil {
			c.err = err
			return 0, err
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
	if err := c.ws.Write(context.Background(), c.codec.messageType(), b); err != nil {
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
