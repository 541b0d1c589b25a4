package apitest

import (
	"net"
	"sync"
	"sync/atomic"
)

// StallingListener hands out connections whose writes, between stallAll
// and release, block (or until the connection is closed): a peer that
// stopped reading, without depending on how much the kernel buffers.
type StallingListener struct {
	net.Listener
	mu       sync.Mutex
	conns    []*stallingConn
	released chan struct{}
}

type stallingConn struct {
	net.Conn
	stalled   atomic.Bool
	released  chan struct{}
	closed    chan struct{}
	closeOnce sync.Once
}

func (l *StallingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	if l.released == nil {
		l.released = make(chan struct{})
	}
	sc := &stallingConn{Conn: c, released: l.released, closed: make(chan struct{})}
	l.conns = append(l.conns, sc)
	l.mu.Unlock()
	return sc, nil
}

func (l *StallingListener) StallAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.conns {
		c.stalled.Store(true)
	}
}

func (l *StallingListener) Release() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.conns {
		c.stalled.Store(false)
	}
	close(l.released)
}

func (c *stallingConn) Write(b []byte) (int, error) {
	if c.stalled.Load() {
		select {
		case <-c.closed:
			return 0, net.ErrClosed
		case <-c.released:
		}
	}
	return c.Conn.Write(b)
}

func (c *stallingConn) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return c.Conn.Close()
}
