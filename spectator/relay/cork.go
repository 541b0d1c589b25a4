package relay

import (
	"bufio"
	"net"
	"net/http"
	"sync"
	"time"
)

// Corked watch writes. A joiner's frames start with the view's join
// keyframe and every delta made since (up to KeyframeInterval/Tick of
// them), and the WebSocket library flushes each message to the socket:
// a join cost one write system call per frame, the most of a relay's CPU
// per join (BenchmarkRelayJoin, docs/BENCHMARKS.md). So a watch corks
// its socket, writes every frame already queued to it and uncorks: the
// backlog goes out in one write, the same bytes in the same order. A
// viewer that keeps up has one frame at a time: one write, as before.
//
// The socket gets to the library through the upgrade: corkHijack hands
// websocket.Accept the corkConn when it hijacks the HTTP connection.

// corkLimit: a cork holding this many bytes writes them out before
// taking more, so a batch never holds more than about this much memory.
const corkLimit = 64 << 10

// corkConn is a net.Conn whose writes, while corked, collect in memory
// and go to the socket together when it is uncorked. Writes from other
// goroutines (the library's close frame) during a cork join the batch,
// which the watch loop always uncorks at once. Every write to the socket
// has timeout.
type corkConn struct {
	net.Conn
	timeout time.Duration

	mu     sync.Mutex
	corked bool
	buf    []byte
	held   *[]byte // buf's holder from corkBufs, while corked
	err    error   // a failed write: every later one fails with it
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
	if c.held == nil {
		c.held = corkBufs.Get().(*[]byte)
		c.buf = (*c.held)[:0]
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
	if err := c.Conn.SetWriteDeadline(time.Now().Add(c.timeout)); err != nil {
		c.err = err
		return 0, err
	}
	n, err := c.Conn.Write(p)
	if err != nil {
		c.err = err
	}
	return n, err
}

// corkBufs hold the corks' buffers between batches: most viewers have
// one frame at a time, so a buffer per viewer would mostly sit idle.
var corkBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

// flush writes the corked bytes. c.mu is held.
func (c *corkConn) flush() error {
	if len(c.buf) == 0 {
		return nil
	}
	_, err := c.write(c.buf)
	c.buf = c.buf[:0]
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
	err := c.err
	if err == nil {
		err = c.flush()
	}
	if c.held != nil && cap(c.buf) <= 2*corkLimit { // not a rare big batch's memory
		*c.held = c.buf[:0]
		corkBufs.Put(c.held)
	}
	c.held, c.buf = nil, nil
	return err
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
