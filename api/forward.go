package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/gsd-dev/gsd/store"
)

// A node that does not serve a world's command sends it to the node that
// does (the Router says which), so clients never redo it: actions, action
// batches and linearizable reads as internal calls (internal.go), the
// other leader-only requests (a world's creation, membership, admin
// session commands) proxied to the same public route, original body bytes
// and query unchanged, with HeaderForwarded set. A marked request that
// reaches a non-leader is answered not_leader instead of hopping again.
// Sending a write on is safe because this node proposed nothing: its group
// either was not asked or said store.ErrNotLeader.

func newForwardClient(cfg Config) *http.Client {
	dialer := &net.Dialer{Timeout: cfg.ForwardDialTimeout, KeepAlive: 30 * time.Second}
	return &http.Client{
		Transport: &http.Transport{
			DialContext:           dialer.DialContext,
			MaxIdleConns:          cfg.ForwardMaxConns,
			MaxIdleConnsPerHost:   cfg.ForwardMaxConns,
			MaxConnsPerHost:       cfg.ForwardMaxConns,
			IdleConnTimeout:       90 * time.Second,
			ResponseHeaderTimeout: cfg.ForwardTimeout,
		},
		// The leader's answer goes back as it is, redirects included.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// onLeader serves a public request that only the world's leader may serve
// and that has no internal call of its own (a world's creation,
// membership, admin session commands): local runs it on this node's group
// and writes the answer when it succeeds; else the request is proxied to
// the leader (route in router.go says when).
func (s *Server) onLeader(w http.ResponseWriter, r *http.Request, world string, kind Kind, body []byte, local func(Group) error) {
	write := kind != KindRead
	err := s.route(world, kind, forwarded(r), local, func(rt Route) error {
		s.forward(w, r, rt, body, write)
		return nil
	})
	if err != nil {
		s.writeError(w, err, write)
	}
}

// forward proxies r to the node rt names and streams its answer back.
func (s *Server) forward(w http.ResponseWriter, r *http.Request, rt Route, body []byte, write bool) {
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.ForwardTimeout)
	defer cancel()
	req, err := s.peerRequest(ctx, r.Method, leaderURL(rt.Addr)+r.URL.RequestURI(), body)
	if err != nil {
		s.metrics.forwards.WithLabelValues("error").Inc()
		s.writeError(w, fmt.Errorf("%w: leader %s has a bad address %q: %v", store.ErrNotLeader, rt.Node, rt.Addr, err), write)
		return
	}
	req.Header.Del("Content-Type") // the client's own, if any, below
	for _, h := range []string{"Content-Type", "Accept", "Authorization"} {
		if v := r.Header.Get(h); v != "" {
			req.Header.Set(h, v)
		}
	}
	resp, err := s.fwd.Do(req)
	if err != nil {
		s.metrics.forwards.WithLabelValues("error").Inc()
		s.writeError(w, forwardError(rt.Node, err, write), write)
		return
	}
	defer resp.Body.Close()
	s.metrics.forwards.WithLabelValues("ok").Inc()
	for _, h := range []string{"Content-Type", "Retry-After", "Allow"} {
		if v := resp.Header.Get(h); v != "" {
			w.Header().Set(h, v)
		}
	}
	w.Header().Set(HeaderLeader, rt.Node)
	w.WriteHeader(resp.StatusCode)
	if _, err := io.Copy(w, resp.Body); err != nil {
		s.log.Debug("copy forwarded answer", "leader", rt.Node, "err", err)
	}
}

// forwardError maps a failed round trip to the leader. A request that never
// left (the dial failed) changed nothing; any later failure of a write may
// have reached the leader, so its outcome is unknown.
func forwardError(leader string, err error, write bool) error {
	if op, ok := errors.AsType[*net.OpError](err); ok && op.Op == "dial" {
		return fmt.Errorf("%w: leader %s unreachable: %v", store.ErrNotLeader, leader, err)
	}
	if write {
		return fmt.Errorf("%w: forwarding to leader %s: %v", store.ErrOutcomeUnknown, leader, err)
	}
	return fmt.Errorf("%w: forwarding to leader %s: %v", store.ErrNotLeader, leader, err)
}

// leaderURL turns a replicated HTTP address (host:port or a URL) into a base URL.
func leaderURL(addr string) string {
	addr = strings.TrimSuffix(addr, "/")
	if strings.HasPrefix(addr, "http://") || strings.HasPrefix(addr, "https://") {
		return addr
	}
	return "http://" + addr
}
