package edge

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/gsd-dev/gsd/store"
)

// A node that does not serve a world's command sends it to the node that
// does (the Router says which), so clients never redo it: every such
// command (actions, action batches, linearizable reads, a world's
// creation, rules updates, membership, admin session commands, player
// data) as an internal call (internal.go) carrying the original body
// bytes, with HeaderForwarded set. A marked request that reaches a
// non-leader is answered not_leader instead of hopping again.
// Sending a write on is safe because this node proposed nothing: its group
// either was not asked or said store.ErrNotLeader.

func NewForwardClient(cfg Config) *http.Client {
	dialer := &net.Dialer{Timeout: cfg.ForwardDialTimeout, KeepAlive: 30 * time.Second}
	return &http.Client{
		Transport: &http.Transport{
			DialContext:           dialer.DialContext,
			MaxIdleConns:          cfg.ForwardMaxConns,
			MaxIdleConnsPerHost:   cfg.ForwardMaxConns,
			MaxConnsPerHost:       cfg.ForwardMaxConns,
			IdleConnTimeout:       90 * time.Second,
			ResponseHeaderTimeout: cfg.ForwardTimeout,
			TLSClientConfig:       cfg.PeerTLS,
		},
		// A redirect is not followed: the serving node answers itself.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// onLeader serves a public admin or world request that only the world's
// leader may serve (a world's creation, a rules update, membership, admin
// session commands, player data): local runs it on this node's group and
// writes the answer when it succeeds; else the leader runs it through its
// internal route at path (internal.go), whose answer is relayed as it is
// (route in router.go says when). A request marked HeaderForwarded (an
// internal call, or a follower of an older version proxying the public
// route) is run here or refused, never sent on.
func (s *Core) OnLeader(w http.ResponseWriter, r *http.Request, world string, kind Kind, path string, body []byte, local func(Group) error) {
	write := kind != KindRead
	err := s.RouteCall(world, kind, HopOf(r), local, func(rt Route) error {
		return s.Relay(w, r, rt, r.Method, path, body)
	})
	if err != nil {
		s.WriteError(w, err, write)
	}
}

// ForwardError maps a failed round trip to the leader. A request that never
// left (the dial or the TLS handshake failed) changed nothing; any later failure of a write may
// have reached the leader, so its outcome is unknown.
func ForwardError(leader string, err error, write bool) error {
	if op, ok := errors.AsType[*net.OpError](err); ok && op.Op == "dial" || tlsRefused(err) {
		return fmt.Errorf("%w: leader %s unreachable: %v", store.ErrNotLeader, leader, err)
	}
	if write {
		return fmt.Errorf("%w: forwarding to leader %s: %v", store.ErrOutcomeUnknown, leader, err)
	}
	return fmt.Errorf("%w: forwarding to leader %s: %v", store.ErrNotLeader, leader, err)
}

// LeaderURL turns a replicated HTTP address (host:port or a URL) into a base URL.
func LeaderURL(addr string) string {
	addr = strings.TrimSuffix(addr, "/")
	if strings.HasPrefix(addr, "http://") || strings.HasPrefix(addr, "https://") {
		return addr
	}
	return "http://" + addr
}
