package wscork

import (
	"bytes"
	"net"
	"sync"
	"time"
)

// Recorder is a net.Conn that records its writes, for the tests and
// rulers that count a server's socket writes. Its Conn may be nil: the
// writes then go nowhere.
type Recorder struct {
	net.Conn
	mu        sync.Mutex
	writes    [][]byte
	err       error // returned by every write when set
	deadlines int   // SetWriteDeadline calls
}

// Write records p, then writes it to the Conn (if any).
func (c *Recorder) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	c.writes = append(c.writes, bytes.Clone(p))
	if c.Conn == nil {
		return len(p), nil
	}
	return c.Conn.Write(p)
}

// SetWriteDeadline counts the call and passes it on (if there is a Conn).
func (c *Recorder) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadlines++
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
}

// Accept accepts a connection as a Recorder.
func (l *RecordingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	r := &Recorder{Conn: c}
	l.mu.Lock()
	l.conns = append(l.conns, r)
	l.mu.Unlock()
	return r, nil
}

// Conns returns the connections accepted so far, in order.
func (l *RecordingListener) Conns() []*Recorder {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*Recorder(nil), l.conns...)
}
