package shard

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// logBuf collects a Mux's log lines.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newTestMux(t *testing.T, tweak func(*MuxConfig)) (*Mux, *logBuf) {
	t.Helper()
	logs := &logBuf{}
	cfg := DefaultMuxConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if tweak != nil {
		tweak(&cfg)
	}
	m, err := NewMux(cfg, nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, m.Close()) })
	return m, logs
}

func listen(t *testing.T, m *Mux, group uint64) *Layer {
	t.Helper()
	l, err := m.Listen(group)
	require.NoError(t, err)
	return l
}

var quietRaft = hclog.New(&hclog.LoggerOptions{Output: io.Discard})

// transport builds a raft transport on stream and answers every RPC it
// receives with term, so a caller can tell which group answered.
func transport(t *testing.T, stream raft.StreamLayer, term uint64) *raft.NetworkTransport {
	t.Helper()
	tr := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{Stream: stream, MaxPool: 2, Timeout: 5 * time.Second, Logger: quietRaft})
	answer(t, tr, term)
	t.Cleanup(func() {
		tr.CloseStreams()
		tr.Close()
	})
	return tr
}

func answer(t *testing.T, tr raft.Transport, term uint64) {
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case rpc := <-tr.Consumer():
				switch rpc.Command.(type) {
				case *raft.AppendEntriesRequest:
					rpc.Respond(&raft.AppendEntriesResponse{Term: term, Success: true}, nil)
				case *raft.RequestVoteRequest:
					rpc.Respond(&raft.RequestVoteResponse{Term: term, Granted: true}, nil)
				default:
					rpc.Respond(nil, errors.New("unexpected rpc"))
				}
			}
		}
	}()
	t.Cleanup(func() {
		close(stop)
		<-done
	})
}

// appendTerm sends an AppendEntries from tr to target and returns the term
// of the answer.
func appendTerm(tr raft.Transport, target raft.ServerAddress) (uint64, error) {
	var resp raft.AppendEntriesResponse
	err := tr.AppendEntries("peer", target, &raft.AppendEntriesRequest{RPCHeader: raft.RPCHeader{ID: []byte("n1"), Addr: []byte(tr.LocalAddr())}, Term: 1}, &resp)
	return resp.Term, err
}

func TestTwoGroupsOverOnePortExchangeRPCsIndependently(t *testing.T) {
	a, _ := newTestMux(t, nil)
	b, _ := newTestMux(t, nil)
	a1, a2 := transport(t, listen(t, a, 1), 101), transport(t, listen(t, a, 2), 102)
	b1, b2 := transport(t, listen(t, b, 1), 201), transport(t, listen(t, b, 2), 202)
	require.Equal(t, raft.ServerAddress(b.Addr().String()), b1.LocalAddr())
	require.Equal(t, b1.LocalAddr(), b2.LocalAddr(), "every group of a node shares its address")

	for _, tc := range []struct {
		from raft.Transport
		to   raft.ServerAddress
		want uint64
	}{
		{a1, b1.LocalAddr(), 201}, {a2, b2.LocalAddr(), 202},
		{b1, a1.LocalAddr(), 101}, {b2, a2.LocalAddr(), 102},
	} {
		term, err := appendTerm(tc.from, tc.to)
		require.NoError(t, err)
		require.Equal(t, tc.want, term, "the answer comes from the sender's own group")
	}
	var vote raft.RequestVoteResponse
	require.NoError(t, a2.RequestVote("peer", b2.LocalAddr(), &raft.RequestVoteRequest{Term: 1}, &vote))
	require.Equal(t, uint64(202), vote.Term)
	require.Equal(t, MuxStats{Grouped: 2}, b.Stats(), "one pooled connection per group")
}

func TestClosingOneGroupLeavesTheOthersRunning(t *testing.T) {
	a, _ := newTestMux(t, nil)
	b, _ := newTestMux(t, nil)
	a1, a2 := transport(t, listen(t, a, 1), 101), transport(t, listen(t, a, 2), 102)
	lb1 := listen(t, b, 1)
	b1, b2 := transport(t, lb1, 201), transport(t, listen(t, b, 2), 202)

	b1.CloseStreams()
	require.NoError(t, b1.Close()) // closes its Layer
	_, err := lb1.Dial(raft.ServerAddress(a.Addr().String()), time.Second)
	require.ErrorIs(t, err, ErrClosed)
	_, err = lb1.Accept()
	require.ErrorIs(t, err, ErrClosed)

	a1.CloseStreams() // a new connection must find group 1 gone
	_, err = appendTerm(a1, b2.LocalAddr())
	require.Error(t, err, "group 1 is closed on b")
	require.Eventually(t, func() bool { return b.Stats().UnknownGroup == 1 }, 5*time.Second, 5*time.Millisecond)

	term, err := appendTerm(a2, b2.LocalAddr())
	require.NoError(t, err)
	require.Equal(t, uint64(202), term)

	// The group can listen again once its Layer is closed.
	transport(t, listen(t, b, 1), 211)
	term, err = appendTerm(a1, b2.LocalAddr())
	require.NoError(t, err)
	require.Equal(t, uint64(211), term)
}

// An old binary's plain raft TCP transport and a node running group 0 over
// a Mux talk to each other both ways.
func TestGroupZeroSpeaksPlainRaftTCP(t *testing.T) {
	m, _ := newTestMux(t, nil)
	mux0 := transport(t, listen(t, m, 0), 100)
	old, err := raft.NewTCPTransportWithLogger("127.0.0.1:0", nil, 2, 5*time.Second, quietRaft)
	require.NoError(t, err)
	answer(t, old, 999)
	t.Cleanup(func() {
		old.CloseStreams()
		old.Close()
	})

	term, err := appendTerm(old, mux0.LocalAddr())
	require.NoError(t, err, "a connection without a header lands on group 0")
	require.Equal(t, uint64(100), term)
	require.Equal(t, MuxStats{Legacy: 1}, m.Stats())

	term, err = appendTerm(mux0, old.LocalAddr())
	require.NoError(t, err, "group 0 dials without a header")
	require.Equal(t, uint64(999), term)
}

func TestHeaderlessConnectionWithoutGroupZeroIsRefused(t *testing.T) {
	m, logs := newTestMux(t, nil)
	listen(t, m, 1)
	conn := dial(t, m)
	_, err := conn.Write([]byte{0, 1, 2})
	require.NoError(t, err)
	requireClosedByPeer(t, conn)
	require.Eventually(t, func() bool { return m.Stats() == MuxStats{UnknownGroup: 1} }, 5*time.Second, 5*time.Millisecond)
	require.Contains(t, logs.String(), "no such group")
}

func TestUnknownGroupIsRefusedCleanly(t *testing.T) {
	m, logs := newTestMux(t, nil)
	transport(t, listen(t, m, 1), 101)
	conn := dial(t, m)
	_, err := conn.Write(appendHeader(nil, 9))
	require.NoError(t, err)
	requireClosedByPeer(t, conn)
	require.Eventually(t, func() bool { return m.Stats() == MuxStats{UnknownGroup: 1} }, 5*time.Second, 5*time.Millisecond)
	require.Contains(t, logs.String(), "group=9")

	// Peers redial a closed group at every heartbeat: one warning, then
	// debug lines until unknownGroupWarnEvery has passed; every one counted.
	conn = dial(t, m)
	_, err = conn.Write(appendHeader(nil, 9))
	require.NoError(t, err)
	requireClosedByPeer(t, conn)
	require.Eventually(t, func() bool { return m.Stats() == MuxStats{UnknownGroup: 2} }, 5*time.Second, 5*time.Millisecond)
	require.Equal(t, 1, strings.Count(logs.String(), "level=WARN"), logs.String())
	require.Contains(t, logs.String(), "unknown_group_total=2")

	// A transport of a group the peer does not have gets an error, not a hang.
	other, _ := newTestMux(t, nil)
	tr := transport(t, listen(t, other, 9), 109)
	_, err = appendTerm(tr, raft.ServerAddress(m.Addr().String()))
	require.Error(t, err)
}

func TestMalformedHeadersAreRefusedAndCounted(t *testing.T) {
	m, logs := newTestMux(t, func(c *MuxConfig) { c.HeaderTimeout = 100 * time.Millisecond })
	tr := transport(t, listen(t, m, 3), 103)
	for _, tc := range []struct {
		name string
		send []byte
		hold bool // keep the connection open after sending
	}{
		{name: "nothing, closed", send: nil},
		{name: "magic only, closed", send: []byte{headerMagic}},
		{name: "short group, closed", send: appendHeader(nil, 3)[:5]},
		{name: "unknown version", send: append([]byte{headerMagic, 2}, make([]byte, 8)...), hold: true},
		{name: "silent", send: nil, hold: true},
		{name: "half a header, then silent", send: appendHeader(nil, 3)[:4], hold: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := m.Stats().BadHeader
			conn := dial(t, m)
			if len(tc.send) > 0 {
				_, err := conn.Write(tc.send)
				require.NoError(t, err)
			}
			if tc.hold {
				requireClosedByPeer(t, conn)
			} else {
				require.NoError(t, conn.(*net.TCPConn).CloseWrite())
			}
			require.Eventually(t, func() bool { return m.Stats().BadHeader == before+1 }, 5*time.Second, 5*time.Millisecond)
		})
	}
	require.Contains(t, logs.String(), "bad group header")
	require.Zero(t, m.Stats().Grouped+m.Stats().UnknownGroup+m.Stats().Legacy)

	// The Mux still serves its group.
	other, _ := newTestMux(t, nil)
	term, err := appendTerm(transport(t, listen(t, other, 3), 203), tr.LocalAddr())
	require.NoError(t, err)
	require.Equal(t, uint64(103), term)
}

func TestMuxCloseEndsLayersAndPendingConnections(t *testing.T) {
	m, err := NewMux(MuxConfig{Addr: "127.0.0.1:0", HeaderTimeout: time.Hour, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, nil)
	require.NoError(t, err)
	l := listen(t, m, 1)
	accepted := make(chan error, 1)
	go func() {
		_, err := l.Accept()
		accepted <- err
	}()
	silent := dial(t, m)
	require.Eventually(t, func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		return len(m.pending) == 1
	}, 5*time.Second, 5*time.Millisecond)

	require.NoError(t, m.Close())
	require.ErrorIs(t, <-accepted, ErrClosed)
	requireClosedByPeer(t, silent) // without waiting out HeaderTimeout
	_, err = m.Listen(2)
	require.ErrorIs(t, err, ErrClosed)
	_, err = l.Dial(raft.ServerAddress(m.Addr().String()), time.Second)
	require.ErrorIs(t, err, ErrClosed)
	require.NoError(t, m.Close(), "Close twice")
	_, err = net.Dial("tcp", m.Addr().String())
	require.Error(t, err, "the listener is closed")
}

func TestListenTwiceForOneGroupFails(t *testing.T) {
	m, _ := newTestMux(t, nil)
	l := listen(t, m, 4)
	require.Equal(t, uint64(4), l.Group())
	_, err := m.Listen(4)
	require.ErrorIs(t, err, ErrGroupTaken)
	require.NoError(t, l.Close())
	require.NoError(t, l.Close(), "Close twice")
	listen(t, m, 4)
}

func TestNewMuxRejectsBadConfig(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer busy.Close()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, tc := range []struct {
		name string
		cfg  MuxConfig
		want string
	}{
		{"no address", MuxConfig{HeaderTimeout: time.Second, Logger: logger}, "address (Addr) is required"},
		{"no header timeout", MuxConfig{Addr: "127.0.0.1:0", Logger: logger}, "HeaderTimeout"},
		{"no logger", MuxConfig{Addr: "127.0.0.1:0", HeaderTimeout: time.Second}, "Logger"},
		{"address in use", MuxConfig{Addr: busy.Addr().String(), HeaderTimeout: time.Second, Logger: logger}, "address already in use"},
		{"unspecified advertise", MuxConfig{Addr: "127.0.0.1:0", Advertise: "0.0.0.0:7000", HeaderTimeout: time.Second, Logger: logger}, "not one peers can dial"},
		{"listening everywhere, no advertise", MuxConfig{Addr: ":0", HeaderTimeout: time.Second, Logger: logger}, "not one peers can dial"},
		{"unresolvable advertise", MuxConfig{Addr: "127.0.0.1:0", Advertise: "no-port", HeaderTimeout: time.Second, Logger: logger}, "resolve advertise"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewMux(tc.cfg, nil)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestMuxAdvertisesItsAdvertiseAddress(t *testing.T) {
	m, _ := newTestMux(t, func(c *MuxConfig) { c.Advertise = "127.0.0.2:7071" })
	require.Equal(t, "127.0.0.2:7071", m.Addr().String())
	require.Equal(t, "127.0.0.2:7071", listen(t, m, 1).Addr().String())
}

func TestMuxMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	cfg := DefaultMuxConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	m, err := NewMux(cfg, reg)
	require.NoError(t, err)
	defer m.Close()
	conn := dial(t, m)
	_, err = conn.Write(appendHeader(nil, 5))
	require.NoError(t, err)
	requireClosedByPeer(t, conn)
	require.Eventually(t, func() bool {
		return outcomeCount(reg, "unknown_group") == 1
	}, 5*time.Second, 5*time.Millisecond)
	n, err := testutil.GatherAndCount(reg, "gsd_raft_mux_connections_total")
	require.NoError(t, err)
	require.Equal(t, 5, n, "one series per outcome")

	_, err = NewMux(cfg, reg)
	require.ErrorContains(t, err, "metrics", "a second Mux on one registry is an error, not a panic")
}

// outcomeCount reads the mux counter of one outcome from reg (-1: none).
func outcomeCount(reg *prometheus.Registry, outcome string) float64 {
	mfs, err := reg.Gather()
	if err != nil {
		return -1
	}
	for _, mf := range mfs {
		for _, metric := range mf.GetMetric() {
			for _, lp := range metric.GetLabel() {
				if lp.GetName() == "outcome" && lp.GetValue() == outcome {
					return metric.GetCounter().GetValue()
				}
			}
		}
	}
	return -1 // no such series
}

func dial(t *testing.T, m *Mux) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", m.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return conn
}

// requireClosedByPeer waits for the Mux to close conn.
func requireClosedByPeer(t *testing.T, conn net.Conn) {
	t.Helper()
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(10*time.Second)))
	_, err := conn.Read(make([]byte, 1))
	var ne net.Error
	require.False(t, errors.As(err, &ne) && ne.Timeout(), "the connection is still open")
	require.True(t, errors.Is(err, io.EOF) || strings.Contains(err.Error(), "reset"), "read: %v", err)
}

func TestConnectionNobodyAcceptsIsClosedWithItsLayer(t *testing.T) {
	m, _ := newTestMux(t, nil)
	l := listen(t, m, 6) // no transport: nothing calls Accept
	conn := dial(t, m)
	_, err := conn.Write(appendHeader(nil, 6))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return m.Stats().Grouped == 1 }, 5*time.Second, 5*time.Millisecond)
	require.NoError(t, l.Close())
	requireClosedByPeer(t, conn)
}

func TestDialToNoListenerFails(t *testing.T) {
	m, _ := newTestMux(t, nil)
	gone, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := gone.Addr().String()
	require.NoError(t, gone.Close())
	for _, group := range []uint64{0, 1} {
		_, err = listen(t, m, group).Dial(raft.ServerAddress(addr), time.Second)
		require.Error(t, err)
	}
}

func TestUnknownGroupWarningsAreSpacedPerGroup(t *testing.T) {
	m, _ := newTestMux(t, nil)
	m.mu.Lock()
	defer m.mu.Unlock()
	t0 := time.Now()
	require.True(t, m.warnUnknown(1, t0))
	require.False(t, m.warnUnknown(1, t0.Add(unknownGroupWarnEvery-time.Millisecond)))
	require.True(t, m.warnUnknown(2, t0), "each group has its own spacing")
	require.True(t, m.warnUnknown(1, t0.Add(unknownGroupWarnEvery)))
	for g := range uint64(2000) {
		m.warnUnknown(g+10, t0)
	}
	require.LessOrEqual(t, len(m.warned), 1024, "bounded")
}

// flakyListener fails its first Accepts, then hands out scripted
// connections, then blocks until closed.
type flakyListener struct {
	fails atomic.Int32
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func (l *flakyListener) Accept() (net.Conn, error) {
	if l.fails.Add(-1) >= 0 {
		return nil, errors.New("too many open files")
	}
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *flakyListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *flakyListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 7071} }

// noDeadlineConn cannot set deadlines, like a connection already closed.
type noDeadlineConn struct{ net.Conn }

func (noDeadlineConn) SetReadDeadline(time.Time) error { return net.ErrClosed }

func TestMuxKeepsServingAfterAcceptErrors(t *testing.T) {
	ln := &flakyListener{conns: make(chan net.Conn), done: make(chan struct{})}
	ln.fails.Store(2)
	logs := &logBuf{}
	cfg := DefaultMuxConfig()
	cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	m, err := newMux(cfg, ln, nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, m.Close()) })
	l := listen(t, m, 0)

	client, server := net.Pipe()
	defer client.Close()
	ln.conns <- server // accepted once the two failures are behind
	go func() { _, _ = client.Write([]byte{0}) }()
	conn, err := l.Accept()
	require.NoError(t, err)
	require.NoError(t, conn.Close())
	require.Equal(t, 2, strings.Count(logs.String(), "too many open files"))

	client, server = net.Pipe()
	defer client.Close()
	ln.conns <- noDeadlineConn{server}
	require.Eventually(t, func() bool { return m.Stats().BadHeader == 1 }, 5*time.Second, 5*time.Millisecond)
}

func TestMuxClosedDuringAcceptBackoff(t *testing.T) {
	ln := &flakyListener{conns: make(chan net.Conn), done: make(chan struct{})}
	ln.fails.Store(1 << 20)
	cfg := DefaultMuxConfig()
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	m, err := newMux(cfg, ln, nil)
	require.NoError(t, err)
	require.NoError(t, m.Close()) // returns although Accept keeps failing
}

// Many groups, many RPCs at once: every answer comes from the group asked.
func TestConcurrentRPCsReachTheirOwnGroups(t *testing.T) {
	a, _ := newTestMux(t, nil)
	b, _ := newTestMux(t, nil)
	const groups, callers, calls = 4, 8, 10
	from := make([]*raft.NetworkTransport, groups)
	for g := range uint64(groups) {
		from[g] = transport(t, listen(t, a, g), 100+g)
		transport(t, listen(t, b, g), 200+g)
	}
	errs := make(chan error, groups*callers)
	for g := range groups {
		for range callers {
			go func() {
				for range calls {
					term, err := appendTerm(from[g], raft.ServerAddress(b.Addr().String()))
					if err == nil && term != uint64(200+g) {
						err = fmt.Errorf("group %d answered by term %d", g, term)
					}
					if err != nil {
						errs <- err
						return
					}
				}
				errs <- nil
			}()
		}
	}
	for range groups * callers {
		require.NoError(t, <-errs)
	}
	st := b.Stats()
	require.Zero(t, st.UnknownGroup+st.BadHeader)
	require.Positive(t, st.Legacy, "group 0 dials without a header")
	require.Positive(t, st.Grouped)
}
