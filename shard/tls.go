package shard

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"time"
)

// TLS under the Mux (issue 12). The handshake wraps the whole connection
// and the group header travels inside it, rather than the header in clear
// before a handshake:
//   - a process without a certificate of the cluster is refused before
//     the Mux reads a byte of its own, so no group, and no header parser,
//     ever sees it;
//   - the group a connection names is authenticated and private like the
//     RPCs that follow;
//   - one rule for every group, group 0 included, which still sends no
//     header (inside TLS) as before.
// The price: a node with TLS on cannot talk to a plain raft TCP peer (an
// older gsd, or a node with TLS off), so TLS is switched on for a whole
// cluster at once (docs/OPERATIONS.md).

// handshake runs the server side of TLS on raw within HeaderTimeout when
// the Mux has TLS; otherwise it returns raw.
func (m *Mux) handshake(raw net.Conn) (net.Conn, error) {
	if m.cfg.TLS == nil {
		return raw, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), m.cfg.HeaderTimeout)
	defer cancel()
	tc := tls.Server(raw, m.cfg.TLS)
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, err
	}
	return tc, nil
}

// refuseTLS counts, logs and closes a connection whose handshake failed.
func (m *Mux) refuseTLS(raw net.Conn, err error) {
	m.stats.tls.Add(1)
	level := slog.LevelWarn
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		level = slog.LevelDebug // a port probe, or our own Close
	}
	m.log.Log(context.Background(), level, "raft mux: connection refused: TLS handshake", "remote", raw.RemoteAddr().String(), "err", err)
	raw.Close()
}

// dialTLS runs the client side of TLS on conn within timeout (none when
// 0) when the Mux has TLS; otherwise it returns conn. It closes conn when
// it fails.
func (l *Layer) dialTLS(conn net.Conn, timeout time.Duration) (net.Conn, error) {
	cfg := l.mux.cfg.DialTLS
	if cfg == nil {
		return conn, nil
	}
	ctx := context.Background()
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	tc := tls.Client(conn, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		conn.Close()
		return nil, err
	}
	return tc, nil
}
