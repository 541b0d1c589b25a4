// Package wscork corks a WebSocket server connection's socket: each
// message the library (coder/websocket) writes ends in a flush to the
// socket, and on loopback or a LAN one write system call costs more than
// encoding the message (the kernel runs the TCP path and wakes the
// reader). A writer that has several messages corks the socket, writes
// them, and uncorks: they go out in one write, the same bytes in the same
// order. The play writers (api/play: control messages, then an outbox's
// frames) and a relay's watch (spectator/relay: a joiner's keyframe and
// the deltas since it) use it.
//
// The socket gets to the library through the upgrade: Hijack hands
// websocket.Accept the Conn when it hijacks the HTTP connection.
package wscork

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// Limit bounds the bytes a cork holds: a write that would take it past
// Limit goes to the socket together with them, in one write (writev on
// a TCP socket), its own bytes not copied. So a batch's buffer never
// holds more than Limit, however big its frames (a joiner's keyframe is
// written from the frame's shared bytes), and a server of thousands of
// connections corking at once holds at most Limit each. Past 16 KiB,
// fewer writes save little: one write system call costs about what
// copying 16 KiB does.
const Limit = 16 << 10

// Conn is a net.Conn whose writes, while corked, collect in memory and go
// to the socket together when it is uncorked. Writes from other
// goroutines (the library's close frame) during a cork join the batch,
// which the writer always uncorks at once. Between batches it holds no
// buffer (a server of thousands of connections that each had a big batch
// once would keep them all): buffers come from a pool.
type Conn struct {
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
	held   *[]byte // buf's holder from bufs, while one is taken
	err    error   // a failed flush: every later write fails with it

	// What went to the socket: write calls and their bytes (the play
	// writers' ruler counts per delivery).
	writes, bytes uint64

	two [2][]byte   // a writev's parts (write)
	vec net.Buffers // over two, consumed by the writev

	// took, when set (tests), runs in Batch each time an item has left
	// its queue (take), before the item is written: the tests look at
	// the queue and the count there.
	took func()
}

// NewConn returns conn corked when asked, its writes bounded by timeout.
func NewConn(conn net.Conn, timeout time.Duration) *Conn {
	return &Conn{Conn: conn, timeout: timeout}
}

// bufs hold the corks' buffers between batches; none is bigger than
// Limit (put grows them only that far).
var bufs = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

// take makes sure c has a buffer. c.mu is held.
func (c *Conn) take() {
	if c.held == nil {
		c.held = bufs.Get().(*[]byte)
		c.buf = (*c.held)[:0]
	}
}

// release gives c's buffer back. c.mu is held.
func (c *Conn) release() {
	if c.held != nil {
		*c.held = c.buf[:0]
		bufs.Put(c.held)
	}
	c.held, c.buf = nil, nil
}

// put adds p to the cork or, when the cork cannot take it within Limit,
// writes what the cork holds and p together. c.mu is held.
func (c *Conn) put(p []byte) error {
	need := len(c.buf) + len(p)
	if need > Limit {
		_, err := c.write(c.buf, p)
		c.buf = c.buf[:0]
		return err
	}
	c.grow(len(p))
	c.buf = append(c.buf, p...)
	return nil
}

// grow makes sure c has a buffer with room for n more bytes (len(c.buf)+n
// is at most Limit): it doubles, to Limit at most. c.mu is held.
func (c *Conn) grow(n int) {
	c.take()
	if need := len(c.buf) + n; need > cap(c.buf) {
		b := make([]byte, len(c.buf), min(Limit, max(need, 2*cap(c.buf))))
		copy(b, c.buf)
		c.buf = b
	}
}

// maxHeader is the longest frame header appendFrameHeader writes.
const maxHeader = 10

// putHeader adds a data frame's header to the cork, after writing what
// it holds if the header would take it past Limit. The header goes
// straight into the buffer: one in a variable of its own would escape to
// the heap through net.Buffers, an allocation per message. c.mu is held.
func (c *Conn) putHeader(typ websocket.MessageType, n int) error {
	if len(c.buf)+maxHeader > Limit {
		if err := c.flush(); err != nil {
			return err
		}
	}
	c.grow(maxHeader)
	c.buf = appendFrameHeader(c.buf, typ, n)
	return nil
}

func (c *Conn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	if !c.corked {
		return c.write(nil, p)
	}
	if err := c.put(p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// deadlineSlack: see Conn.timeout.
const deadlineSlack = 16

// write writes held (the cork's bytes) then p to the socket within the
// timeout, in one write call: net.Buffers writes both with one writev on
// a TCP socket, p not copied. c.mu is held.
func (c *Conn) write(held, p []byte) (int, error) {
	if c.timeout > 0 {
		if now := time.Now(); now.Sub(c.setAt) >= c.timeout/deadlineSlack {
			if err := c.Conn.SetWriteDeadline(now.Add(c.timeout)); err != nil {
				c.err = err
				return 0, err
			}
			c.setAt = now
		}
	}
	var n int
	var err error
	if len(held) == 0 {
		n, err = c.Conn.Write(p)
	} else {
		// One writev on a *net.TCPConn; a connection without one (a
		// *tls.Conn) writes the two in turn under c.mu: two TLS records,
		// the corked bytes first, for a frame past Limit only.
		c.two = [2][]byte{held, p}
		c.vec = c.two[:] // in c, not on the heap per write
		var n64 int64
		n64, err = c.vec.WriteTo(c.Conn)
		n = int(n64)
		c.two = [2][]byte{} // keeps no frame
	}
	c.writes++
	c.bytes += uint64(n)
	if err != nil {
		c.err = err
	}
	return n, err
}

// Written returns the write calls made to the socket and their bytes.
func (c *Conn) Written() (writes, bytes uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writes, c.bytes
}

// Idle reports whether no batch is corked (none is being written).
func (c *Conn) Idle() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.corked
}

// flush writes the corked bytes. c.mu is held.
func (c *Conn) flush() error {
	if len(c.buf) == 0 {
		return nil
	}
	_, err := c.write(nil, c.buf)
	c.buf = c.buf[:0]
	return err
}

// WriteMessage writes one WebSocket data message of type typ carrying p
// as a single unmasked, uncompressed frame (RFC 6455 5.2), the bytes the
// library would write for it, straight into the cork (or to the socket
// when not corked): a writer's messages skip the library's write path
// (its locks, context checks and bufio flush per message), which costs
// about as much as copying the frame. The library still writes its
// control frames (pongs, the close frame) through Write, each in one
// call, so that frames never interleave; done is the connection's
// context, cancelled before its close frame is written: a message that
// finds it cancelled is refused, so that none follows the close frame.
func (c *Conn) WriteMessage(done context.Context, typ websocket.MessageType, p []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return c.err
	}
	if err := done.Err(); err != nil {
		return fmt.Errorf("the connection is closing: %w", net.ErrClosed)
	}
	err := c.putHeader(typ, len(p))
	if err == nil {
		err = c.put(p)
	}
	if c.corked {
		return err
	}
	if err == nil {
		err = c.flush()
	}
	c.release()
	return err
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

// Cork makes writes collect until Uncork.
func (c *Conn) Cork() {
	c.mu.Lock()
	c.corked = true
	c.mu.Unlock()
}

// Uncork writes what the cork collected, in one write.
func (c *Conn) Uncork() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.corked = false
	err := c.err
	if err == nil {
		err = c.flush()
	}
	c.release()
	return err
}

// Hijack is the ResponseWriter given to websocket.Accept: its Hijack
// wraps the connection in a Conn (Conn, once hijacked) whose socket
// writes have Timeout.
type Hijack struct {
	http.ResponseWriter
	Timeout time.Duration
	Conn    *Conn
}

// Hijack takes over the HTTP connection as a Conn.
func (h *Hijack) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	// net/http hands over a fresh writer: nothing is buffered in it.
	h.Conn = NewConn(conn, h.Timeout)
	return h.Conn, bufio.NewReadWriter(brw.Reader, bufio.NewWriter(h.Conn)), nil
}

// Unwrap lets http.ResponseController reach the server's ResponseWriter.
func (h *Hijack) Unwrap() http.ResponseWriter { return h.ResponseWriter }

// Batch writes first, then every item ch holds now, with write: the items
// queued behind first (a joiner's deltas behind its keyframe, a lagging
// viewer's backlog) go out corked, in one socket write (or more, each
// holding at most Limit); first alone is written uncorked (the library's
// one write, nothing copied). Only the caller may receive from ch: what
// it holds then are items, never its close, which comes after them.
// write must not close the connection: a close waits for the peer's
// answer to a close frame still in the cork.
//
// inFlight counts the items Batch took from ch whose bytes are still in
// the cork, not yet written to the socket (each counted before it leaves
// ch, 0 once Batch returns): the queue's owner counts them as still
// queued, so that a batch taking the queue does not let the writer fall
// further behind than the queue's bound (spectator: a slow viewer skips
// to a keyframe at the same bound as when it wrote frame by frame). first
// is not counted: it is the one being written, as an uncorked write's is.
//
// An item is counted before it leaves ch, not after, on purpose (issue
// 13's review asked): the owner reads len(ch) and the count while Batch
// runs, and the take cannot change both at once. Counted before, the
// item is seen in ch, in flight, or for the instant between the count
// and the take in both: one item less room, so a viewer within one frame
// of its bound may skip to a keyframe a frame early then, never late.
// Counted after, it would be seen in neither for an instant, and the
// owner could queue past its bound. The owner reads ch before the count
// (spectator.Member.room). TestBatchCountsAnItemBeforeItLeavesTheQueue
// pins the order: it looks at the instant each item has left ch (take's
// hook) and finds it counted.
func Batch[T any](c *Conn, first T, ch <-chan T, inFlight *atomic.Int32, write func(T) error) error {
	n := len(ch)
	if n == 0 {
		return write(first)
	}
	c.Cork()
	err := write(first)
	var corked int32 // items from ch in the cork
	for ; err == nil && n > 0; n-- {
		inFlight.Store(corked + 1)
		writes := c.socketWrites()
		err = write(take(c, ch))
		corked = c.stillCorked(writes, corked+1)
		inFlight.Store(corked)
	}
	if uerr := c.Uncork(); err == nil {
		err = uerr
	}
	inFlight.Store(0)
	return err
}

// take receives Batch's next item from ch, which holds one.
func take[T any](c *Conn, ch <-chan T) T {
	v := <-ch
	if c.took != nil {
		c.took()
	}
	return v
}

// socketWrites returns how many writes went to the socket.
func (c *Conn) socketWrites() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writes
}

// stillCorked returns how many of the k items written into the cork since
// the socket's writes numbered before still have bytes in it: none when
// the cork is empty, only the last when the socket was written since
// (the items before it went then), else all k.
func (c *Conn) stillCorked(before uint64, k int32) int32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case len(c.buf) == 0:
		return 0
	case c.writes != before:
		return 1
	}
	return k
}
