package wscork

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"sync"
	"time"
)

// Recorder is a net.Conn that records its writes, for the tests and
// rulers that count a server's socket writes. Its Conn may be nil: the
// writes then go nowhere.
type Recorder struct {
	net.Conn
	gate      *Gate // set: writes after the first wait for it to open
	mu        sync.Mutex
	writes    [][]byte
	err       error     // returned by every write when set
	deadlines int       // SetWriteDeadline calls
	deadline  time.Time // the last one set
}

// Write records p, then writes it to the Conn (if any), once its gate
// (if any) is open when it is not the first write.
func (c *Recorder) Write(p []byte) (int, error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return 0, c.err
	}
	c.writes = append(c.writes, bytes.Clone(p))
	n, deadline := len(c.writes), c.deadline
	c.mu.Unlock()
	if c.gate != nil && n > 1 {
		if err := c.gate.wait(deadline); err != nil {
			return 0, err
		}
	}
	if c.Conn == nil {
		return len(p), nil
	}
	return c.Conn.Write(p)
}

// Gate holds back the writes of the Recorders a RecordingListener
// accepts while it holds at the gate (HoldAt), after their first (the
// handshake's answer), until it opens or their write deadline passes: a
// peer on a link that takes nothing, for the tests of slow viewers.
type Gate struct {
	open    chan struct{}
	once    sync.Once
	waiting chan struct{}
}

// NewGate returns a closed gate.
func NewGate() *Gate { return &Gate{open: make(chan struct{}), waiting: make(chan struct{}, 1)} }

// Open lets the held writes through, and every later one.
func (g *Gate) Open() { g.once.Do(func() { close(g.open) }) }

// Waiting receives when a write waits at the gate.
func (g *Gate) Waiting() <-chan struct{} { return g.waiting }

// wait waits for g to open, or until deadline (if set) as a socket's
// write does.
func (g *Gate) wait(deadline time.Time) error {
	select {
	case g.waiting <- struct{}{}:
	default:
	}
	var expired <-chan time.Time
	if !deadline.IsZero() {
		t := time.NewTimer(time.Until(deadline))
		defer t.Stop()
		expired = t.C
	}
	select {
	case <-g.open:
		return nil
	case <-expired:
		return fmt.Errorf("a write held at the gate: %w", os.ErrDeadlineExceeded)
	}
}

// SetWriteDeadline counts the call, keeps t (a write held at a gate
// fails at it) and passes it on (if there is a Conn).
func (c *Recorder) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadlines++
	c.deadline = t
	c.mu.Unlock()
	if c.Conn == nil {
		return nil
	}
	return c.Conn.SetWriteDeadline(t)
}

// Fail makes every later write fail with err.
func (c *Recorder) Fail(err error) {
	c.mu.Lock()
	c.err = err
	c.mu.Unlock()
}

// Written returns the writes so far, one slice each.
func (c *Recorder) Written() [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([][]byte(nil), c.writes...)
}

// Deadlines returns how many times the write deadline was set.
func (c *Recorder) Deadlines() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.deadlines
}

// RecordingListener is a net.Listener whose accepted connections are
// Recorders.
type RecordingListener struct {
	net.Listener
	mu    sync.Mutex
	conns []*Recorder
	gate  *Gate
}

// HoldAt makes the connections accepted from now on hold their writes
// after their first at g (nil: they do not).
func (l *RecordingListener) HoldAt(g *Gate) {
	l.mu.Lock()
	l.gate = g
	l.mu.Unlock()
}

// Accept accepts a connection as a Recorder.
func (l *RecordingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	r := &Recorder{Conn: c, gate: l.gate}
	l.conns = append(l.conns, r)
	return r, nil
}

// Conns returns the connections accepted so far, in order.
func (l *RecordingListener) Conns() []*Recorder {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*Recorder(nil), l.conns...)
}
