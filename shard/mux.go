package shard

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// MuxConfig configures a Mux.
type MuxConfig struct {
	Addr      string // address the shared Raft listener binds
	Advertise string // address peers dial; defaults to the listener's address
	// HeaderTimeout bounds how long an accepted connection may take to send
	// its first bytes (its header, or its first RPC's type byte).
	HeaderTimeout time.Duration
	Logger        *slog.Logger
	// TLS, when set, wraps every accepted connection: the handshake comes
	// first, within HeaderTimeout, then the group header inside it
	// (tls.go). DialTLS wraps every connection a Layer dials. Both or
	// neither: a node with TLS on speaks to TLS peers only.
	TLS     *tls.Config
	DialTLS *tls.Config
}

// DefaultMuxConfig returns the defaults; Addr must still be set.
func DefaultMuxConfig() MuxConfig {
	return MuxConfig{HeaderTimeout: 10 * time.Second, Logger: slog.Default()}
}

// Validate checks the config.
func (c MuxConfig) Validate() error {
	var errs []error
	if c.Addr == "" {
		errs = append(errs, errors.New("an address (Addr) is required"))
	}
	if c.HeaderTimeout <= 0 {
		errs = append(errs, errors.New("HeaderTimeout must be > 0"))
	}
	if c.Logger == nil {
		errs = append(errs, errors.New("a logger (Logger) is required"))
	}
	if (c.TLS == nil) != (c.DialTLS == nil) {
		errs = append(errs, errors.New("TLS and DialTLS are set together or not at all"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("mux config: %w", err)
	}
	return nil
}

// MuxStats counts the connections a Mux accepted, by what became of them.
type MuxStats struct {
	Legacy       uint64 // without a header, handed to group 0
	Grouped      uint64 // with a header, handed to their group
	UnknownGroup uint64 // refused: no Layer listens for their group
	BadHeader    uint64 // refused: short, late or unknown header
	TLSRefused   uint64 // refused: the TLS handshake failed (no or a foreign certificate)
}

// Mux shares one TCP listener among a node's Raft groups: it reads each
// accepted connection's group header and hands the connection to that
// group's Layer.
type Mux struct {
	cfg MuxConfig
	log *slog.Logger
	ln  net.Listener
	adv net.Addr

	mu      sync.Mutex
	groups  map[uint64]*Layer
	pending map[net.Conn]struct{} // accepted, header not yet read
	warned  map[uint64]time.Time  // when a refusal for the group was last logged as a warning
	closed  bool

	done  chan struct{}
	wg    sync.WaitGroup
	stats struct{ legacy, grouped, unknown, bad, tls atomic.Uint64 }
}

// NewMux listens on cfg.Addr and starts accepting. reg, when not nil, gets
// the counters of MuxStats as gsd_raft_mux_connections_total{outcome}.
func NewMux(cfg MuxConfig, reg prometheus.Registerer) (*Mux, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("raft mux: %w", err)
	}
	return newMux(cfg, ln, reg)
}

// newMux serves ln, which it closes when it fails.
func newMux(cfg MuxConfig, ln net.Listener, reg prometheus.Registerer) (*Mux, error) {
	var err error
	adv := ln.Addr()
	if cfg.Advertise != "" {
		if adv, err = net.ResolveTCPAddr("tcp", cfg.Advertise); err != nil {
			ln.Close()
			return nil, fmt.Errorf("raft mux: resolve advertise address %q: %w", cfg.Advertise, err)
		}
	}
	// Peers dial this address; raft's own TCP transport refuses the same.
	if a, ok := adv.(*net.TCPAddr); !ok || a.IP == nil || a.IP.IsUnspecified() {
		ln.Close()
		return nil, fmt.Errorf("raft mux: advertise address %s is not one peers can dial", adv)
	}
	m := &Mux{
		cfg: cfg, log: cfg.Logger, ln: ln, adv: adv,
		groups: make(map[uint64]*Layer), pending: make(map[net.Conn]struct{}), warned: make(map[uint64]time.Time),
		done: make(chan struct{}),
	}
	if reg != nil {
		if err := m.register(reg); err != nil {
			ln.Close()
			return nil, fmt.Errorf("raft mux metrics: %w", err)
		}
	}
	m.wg.Add(1)
	go m.serve()
	return m, nil
}

func (m *Mux) register(reg prometheus.Registerer) error {
	for outcome, v := range map[string]*atomic.Uint64{
		"legacy": &m.stats.legacy, "grouped": &m.stats.grouped,
		"unknown_group": &m.stats.unknown, "bad_header": &m.stats.bad,
		"tls_refused": &m.stats.tls,
	} {
		c := prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "gsd_raft_mux_connections_total",
			Help:        "Raft connections the mux accepted, by outcome (legacy: no header, group 0).",
			ConstLabels: prometheus.Labels{"outcome": outcome},
		}, func() float64 { return float64(v.Load()) })
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// Addr returns the address peers dial: the advertised one.
func (m *Mux) Addr() net.Addr { return m.adv }

// Stats returns the connection counters.
func (m *Mux) Stats() MuxStats {
	return MuxStats{
		Legacy: m.stats.legacy.Load(), Grouped: m.stats.grouped.Load(),
		UnknownGroup: m.stats.unknown.Load(), BadHeader: m.stats.bad.Load(),
		TLSRefused: m.stats.tls.Load(),
	}
}

// Listen returns group's Layer. One Layer per group at a time: a second
// Listen fails with ErrGroupTaken until the first Layer is closed.
func (m *Mux) Listen(group uint64) (*Layer, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	if _, ok := m.groups[group]; ok {
		return nil, fmt.Errorf("%w: %d", ErrGroupTaken, group)
	}
	l := &Layer{mux: m, group: group, conns: make(chan net.Conn), done: make(chan struct{})}
	m.groups[group] = l
	return l, nil
}

// Close stops accepting, closes every Layer and the connections whose
// header was still being read, and waits for the Mux's goroutines.
// Connections already handed to a group belong to its transport.
func (m *Mux) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	close(m.done)
	err := m.ln.Close()
	for c := range m.pending {
		c.Close()
	}
	layers := make([]*Layer, 0, len(m.groups))
	for _, l := range m.groups {
		layers = append(layers, l)
	}
	m.mu.Unlock()
	for _, l := range layers {
		l.Close()
	}
	m.wg.Wait()
	return err
}

// serve accepts until Close. Accept errors other than the listener's close
// (e.g. out of file descriptors) back off and retry, as raft's own
// transport does.
func (m *Mux) serve() {
	defer m.wg.Done()
	const baseDelay, maxDelay = 5 * time.Millisecond, time.Second
	var delay time.Duration
	for {
		conn, err := m.ln.Accept()
		if err != nil {
			select {
			case <-m.done:
				return
			default:
			}
			delay = min(max(2*delay, baseDelay), maxDelay)
			m.log.Error("raft mux: accept", "err", err, "retry_in", delay)
			t := time.NewTimer(delay)
			select {
			case <-m.done:
				t.Stop()
				return
			case <-t.C:
			}
			continue
		}
		delay = 0
		if !m.track(conn) {
			conn.Close()
			return
		}
		m.wg.Add(1)
		go m.route(conn)
	}
}

// track records conn as pending so that Close can interrupt its header
// read; false when the Mux is closed.
func (m *Mux) track(conn net.Conn) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return false
	}
	m.pending[conn] = struct{}{}
	return true
}

// route reads conn's header and hands it to its group's Layer, or closes it.
func (m *Mux) route(raw net.Conn) {
	defer m.wg.Done()
	conn, err := m.handshake(raw)
	if err != nil {
		m.mu.Lock()
		delete(m.pending, raw)
		m.mu.Unlock()
		m.refuseTLS(raw, err)
		return
	}
	group, first, err := m.readHeader(conn)
	m.mu.Lock()
	delete(m.pending, raw)
	l := m.groups[group]
	warn := err == nil && l == nil && m.warnUnknown(group, time.Now())
	m.mu.Unlock()
	remote := conn.RemoteAddr().String()
	switch {
	// Counted and logged before the close, which the peer sees.
	case err != nil:
		m.stats.bad.Add(1)
		level := slog.LevelWarn
		if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
			level = slog.LevelDebug // a port probe, or our own Close
		}
		m.log.Log(context.Background(), level, "raft mux: connection refused", "remote", remote, "err", err)
		conn.Close()
		return
	case l == nil:
		n := m.stats.unknown.Add(1)
		level := slog.LevelDebug
		if warn {
			level = slog.LevelWarn
		}
		m.log.Log(context.Background(), level, "raft mux: connection refused: no such group on this node",
			"remote", remote, "group", group, "unknown_group_total", n)
		conn.Close()
		return
	case first != nil:
		m.stats.legacy.Add(1)
		conn = &prefixConn{Conn: conn, prefix: first}
	default:
		m.stats.grouped.Add(1)
	}
	l.deliver(conn)
}

// unknownGroupWarnEvery spaces the warnings about one unknown group: peers
// of a group closed on this node redial it at every heartbeat.
const unknownGroupWarnEvery = 10 * time.Second

// warnUnknown reports whether a refusal for group should be a warning,
// and notes when it was. The caller holds m.mu.
func (m *Mux) warnUnknown(group uint64, now time.Time) bool {
	if last, ok := m.warned[group]; ok && now.Sub(last) < unknownGroupWarnEvery {
		return false
	}
	if len(m.warned) >= 1024 { // bounded, whatever group ids peers send
		clear(m.warned)
	}
	m.warned[group] = now
	return true
}

// readHeader reads conn's group header within HeaderTimeout.
func (m *Mux) readHeader(conn net.Conn) (uint64, []byte, error) {
	if err := conn.SetReadDeadline(time.Now().Add(m.cfg.HeaderTimeout)); err != nil {
		return 0, nil, err
	}
	group, first, err := readHeader(conn)
	if err != nil {
		return 0, nil, err
	}
	return group, first, conn.SetReadDeadline(time.Time{})
}

// prefixConn replays the bytes the Mux read to find a connection's group.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.prefix) == 0 {
		return c.Conn.Read(p)
	}
	n := copy(p, c.prefix)
	c.prefix = c.prefix[n:]
	return n, nil
}
