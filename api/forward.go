package api

import (
	"bytes"
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

// A follower answers writes and linearizable reads by proxying them to the
// leader itself, so clients never redo them. The original body bytes and
// query go out unchanged with HeaderForwarded set; a marked request that
// reaches a non-leader is answered not_leader instead of hopping again.
// Forwarding a write is safe because the follower proposed nothing: its
// backend either was skipped (not the leader) or said store.ErrNotLeader.

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

// toLeader routes a request that only the leader can serve: it returns
// false when this node leads (the caller serves it), and otherwise answers
// it by forwarding (or refusing) and returns true.
func (s *Server) toLeader(w http.ResponseWriter, r *http.Request, body []byte, write bool) bool {
	if s.b.IsLeader() {
		return false
	}
	s.forward(w, r, body, write)
	return true
}

// retryOnLeader handles a backend error: when it is store.ErrNotLeader and
// this node has meanwhile lost leadership, the request is forwarded and
// retryOnLeader returns true. A leader that is not yet ready keeps the error.
func (s *Server) retryOnLeader(w http.ResponseWriter, r *http.Request, body []byte, err error, write bool) bool {
	if !errors.Is(err, store.ErrNotLeader) || s.b.IsLeader() {
		return false
	}
	s.forward(w, r, body, write)
	return true
}

// forward proxies r to the leader and streams its answer back.
func (s *Server) forward(w http.ResponseWriter, r *http.Request, body []byte, write bool) {
	if r.Header.Get(HeaderForwarded) != "" {
		s.metrics.forwards.WithLabelValues("loop").Inc()
		s.writeError(w, fmt.Errorf("%w: a forwarded request reached a non-leader", store.ErrNotLeader), write)
		return
	}
	id, addr := s.b.Leader()
	if addr == "" {
		s.metrics.forwards.WithLabelValues("no_leader").Inc()
		s.writeError(w, fmt.Errorf("%w: no known leader", store.ErrNotLeader), write)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.ForwardTimeout)
	defer cancel()
	var rd io.Reader = http.NoBody
	if len(body) > 0 {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, leaderURL(addr)+r.URL.RequestURI(), rd)
	if err != nil {
		s.metrics.forwards.WithLabelValues("error").Inc()
		s.writeError(w, fmt.Errorf("%w: leader %s has a bad address %q: %v", store.ErrNotLeader, id, addr, err), write)
		return
	}
	for _, h := range []string{"Content-Type", "Accept", "Authorization"} {
		if v := r.Header.Get(h); v != "" {
			req.Header.Set(h, v)
		}
	}
	req.Header.Set(HeaderForwarded, "1")
	s.setClusterKey(req.Header)
	resp, err := s.fwd.Do(req)
	if err != nil {
		s.metrics.forwards.WithLabelValues("error").Inc()
		s.writeError(w, forwardError(id, err, write), write)
		return
	}
	defer resp.Body.Close()
	s.metrics.forwards.WithLabelValues("ok").Inc()
	for _, h := range []string{"Content-Type", "Retry-After", "Allow"} {
		if v := resp.Header.Get(h); v != "" {
			w.Header().Set(h, v)
		}
	}
	w.Header().Set(HeaderLeader, id)
	w.WriteHeader(resp.StatusCode)
	if _, err := io.Copy(w, resp.Body); err != nil {
		s.log.Debug("copy forwarded answer", "leader", id, "err", err)
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
