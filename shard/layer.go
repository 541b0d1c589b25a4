package shard

import (
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// Layer is one group's share of a Mux: a raft.StreamLayer whose Accept
// yields the connections that named its group, and whose Dial names it.
// Closing it stops only this group; the Mux and other groups go on.
type Layer struct {
	mux   *Mux
	group uint64
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

var _ raft.StreamLayer = (*Layer)(nil)

// Group returns the group the Layer carries.
func (l *Layer) Group() uint64 { return l.group }

// Accept waits for the next connection of the Layer's group.
func (l *Layer) Accept() (net.Conn, error) {
	select {
	case <-l.done:
		return nil, fmt.Errorf("raft mux group %d: %w", l.group, ErrClosed)
	default:
	}
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, fmt.Errorf("raft mux group %d: %w", l.group, ErrClosed)
	}
}

// Close stops the Layer: Accept returns ErrClosed, connections for its
// group are refused as unknown, and Listen may take the group again.
// Connections already accepted belong to the transport.
func (l *Layer) Close() error {
	l.once.Do(func() {
		close(l.done)
		m := l.mux
		m.mu.Lock()
		if m.groups[l.group] == l {
			delete(m.groups, l.group)
		}
		m.mu.Unlock()
	})
	return nil
}

// Addr returns the address peers dial for any group of this node.
func (l *Layer) Addr() net.Addr { return l.mux.adv }

// Dial connects to a peer's Mux for the Layer's group, through TLS when
// the Mux has it (tls.go). Group 0 sends no
// header: its connections are those of a plain raft TCP transport, so a
// peer running an older binary (raft.NewTCPTransport) accepts them.
func (l *Layer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	select {
	case <-l.done:
		return nil, fmt.Errorf("raft mux group %d: %w", l.group, ErrClosed)
	default:
	}
	d := net.Dialer{Timeout: timeout}
	conn, err := d.Dial("tcp", string(address))
	if err != nil {
		return nil, err
	}
	if conn, err = l.dialTLS(conn, timeout); err != nil {
		return nil, fmt.Errorf("raft tls to %s: %w", address, err)
	}
	if l.group == 0 {
		return conn, nil
	}
	if timeout > 0 {
		if err := conn.SetWriteDeadline(time.Now().Add(timeout)); err != nil {
			conn.Close()
			return nil, err
		}
	}
	if _, err := conn.Write(appendHeader(nil, l.group)); err != nil {
		conn.Close()
		return nil, fmt.Errorf("send group header to %s: %w", address, err)
	}
	if err := conn.SetWriteDeadline(time.Time{}); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

// deliver hands conn to Accept, or closes it when the Layer or the Mux
// closes first.
func (l *Layer) deliver(conn net.Conn) {
	select {
	case l.conns <- conn:
	case <-l.done:
		conn.Close()
	case <-l.mux.done:
		conn.Close()
	}
}
