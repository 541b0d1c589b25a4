package jepsen

import (
	"math/rand/v2"
	"net"
	"sync"
	"time"
)

// Faults is what a link does to the bytes flowing in one direction.
type Faults struct {
	// Blackhole stalls the direction: bytes are held, never delivered. When
	// the blackhole lifts, every connection that stalled is reset, as a TCP
	// connection whose peer vanished would eventually be; bytes are never
	// silently dropped from the middle of a stream (TCP cannot do that).
	Blackhole bool
	// Latency and Jitter delay each chunk by Latency ± Jitter (uniform),
	// keeping order.
	Latency, Jitter time.Duration
	// BytesPerSec caps the direction's throughput per connection (0: none).
	BytesPerSec int
}

// Dir names a direction of a link: Up is from the dialer (the source) to
// the listener (the destination), Down is the answers coming back.
type Dir int

// The two directions of a link.
const (
	Up Dir = iota
	Down
)

// Proxy is a userspace TCP proxy for one (source, destination) link. Its
// faults can change at any time; they apply to open connections too.
type Proxy struct {
	Name   string
	target string
	ln     net.Listener

	mu      sync.Mutex
	faults  [2]Faults
	changed chan struct{} // closed and replaced on every change
	conns   map[*proxyConn]struct{}
	closed  bool
	wg      sync.WaitGroup
}

type proxyConn struct {
	client, server net.Conn
	once           sync.Once
	done           chan struct{}
	stalled        bool // guarded by Proxy.mu
}

func (c *proxyConn) close(reset bool) {
	c.once.Do(func() {
		close(c.done)
		for _, x := range []net.Conn{c.client, c.server} {
			if x == nil {
				continue
			}
			if tc, ok := x.(*net.TCPConn); ok && reset {
				_ = tc.SetLinger(0)
			}
			_ = x.Close()
		}
	})
}

// NewProxy listens on a random loopback port and forwards to target.
func NewProxy(name, target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{Name: name, target: target, ln: ln, changed: make(chan struct{}), conns: map[*proxyConn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the address sources dial.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// SetTarget changes where new connections go (a restarted node keeps its
// ports, so this is rarely needed).
func (p *Proxy) SetTarget(t string) { p.mu.Lock(); p.target = t; p.mu.Unlock() }

// Set replaces the faults of direction d.
func (p *Proxy) Set(d Dir, f Faults) {
	p.mu.Lock()
	defer p.mu.Unlock()
	was := p.faults[d].Blackhole
	p.faults[d] = f
	if was && !f.Blackhole && !p.faults[1-d].Blackhole {
		// Reset stalled connections before any pump can see the change, so
		// no stalled byte is delivered late on a connection.
		for c := range p.conns {
			if c.stalled {
				c.close(true)
			}
		}
	}
	close(p.changed)
	p.changed = make(chan struct{})
}

// Heal clears every fault in both directions.
func (p *Proxy) Heal() { p.Set(Up, Faults{}); p.Set(Down, Faults{}) }

// Reset closes every open connection with a TCP RST.
func (p *Proxy) Reset() {
	p.mu.Lock()
	cs := make([]*proxyConn, 0, len(p.conns))
	for c := range p.conns {
		cs = append(cs, c)
	}
	p.mu.Unlock()
	for _, c := range cs {
		c.close(true)
	}
}

// Close stops the proxy and closes its connections.
func (p *Proxy) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()
	_ = p.ln.Close()
	p.Reset()
	p.wg.Wait()
}

func (p *Proxy) state(d Dir) (Faults, <-chan struct{}, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.faults[d], p.changed, p.closed
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		cl, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		target, closed := p.target, p.closed
		p.mu.Unlock()
		if closed {
			cl.Close()
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.serve(cl, target)
		}()
	}
}

func (p *Proxy) serve(cl net.Conn, target string) {
	srv, err := net.DialTimeout("tcp", target, 2*time.Second)
	if err != nil {
		// A dead destination: refuse the source abruptly, like a closed port.
		if tc, ok := cl.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		cl.Close()
		return
	}
	c := &proxyConn{client: cl, server: srv, done: make(chan struct{})}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		c.close(true)
		return
	}
	p.conns[c] = struct{}{}
	p.mu.Unlock()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.pump(c, Up, cl, srv) }()
	go func() { defer wg.Done(); p.pump(c, Down, srv, cl) }()
	wg.Wait()
	c.close(false)
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

type chunk struct {
	b  []byte
	at time.Time
}

// pump copies src to dst applying direction d's faults. A reader goroutine
// timestamps chunks; the writer delays, throttles or stalls them.
func (p *Proxy) pump(c *proxyConn, d Dir, src, dst net.Conn) {
	ch := make(chan chunk, 256)
	go func() {
		defer close(ch)
		for {
			buf := make([]byte, 32<<10)
			n, err := src.Read(buf)
			if n > 0 {
				ch <- chunk{b: buf[:n], at: time.Now()}
			}
			if err != nil {
				return
			}
		}
	}()
	defer func() {
		// Drain the reader so it can exit once the connection is closed.
		c.close(false)
		for range ch {
		}
	}()
	var due time.Time // keeps delayed chunks in order
	for ck := range ch {
		for {
			f, changed, closed := p.state(d)
			if closed {
				return
			}
			if !f.Blackhole {
				break
			}
			p.mu.Lock()
			c.stalled = true
			p.mu.Unlock()
			select {
			case <-changed:
			case <-c.done:
				return
			}
		}
		f, _, _ := p.state(d)
		if f.Latency > 0 || f.Jitter > 0 {
			delay := f.Latency
			if f.Jitter > 0 {
				delay += time.Duration(rand.Int64N(int64(2*f.Jitter))) - f.Jitter
			}
			t := ck.at.Add(max(delay, 0))
			if t.Before(due) {
				t = due
			}
			due = t
			if w := time.Until(t); w > 0 {
				time.Sleep(w) // simulating the wire, not waiting for a state
			}
		}
		if _, err := dst.Write(ck.b); err != nil {
			return
		}
		if f.BytesPerSec > 0 {
			time.Sleep(time.Duration(float64(len(ck.b)) / float64(f.BytesPerSec) * float64(time.Second)))
		}
	}
	// src ended: the deferred close ends both directions (neither raft nor
	// HTTP relies on half-closed connections).
}
