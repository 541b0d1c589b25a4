package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gsd-dev/gsd/fanout"
	"github.com/prometheus/client_golang/prometheus"
)

// Headers the edge reads and writes.
const (
	// HeaderForwarded marks a request a follower proxied to the leader. A
	// marked request that lands on a non-leader is refused, never forwarded
	// again, so a stale leader view cannot make requests loop.
	HeaderForwarded = "X-Gsd-Forwarded"
	// HeaderLeader names the leader that answered a forwarded request.
	HeaderLeader = "X-Gsd-Leader"
)

// Config configures a Server.
type Config struct {
	// MaxBodyBytes bounds the body of every request except batches.
	MaxBodyBytes int64
	// MaxBatchBodyBytes bounds the body of an actions:batch request.
	MaxBatchBodyBytes int64
	// MaxBatchActions bounds the actions of one batch request.
	MaxBatchActions int
	// BatchConcurrency bounds the actions of one batch in flight at once.
	BatchConcurrency int
	// RequestTimeout bounds one backend call (an action, a linearizable
	// read, a membership change). A write that runs out of it is answered
	// outcome_unknown.
	RequestTimeout time.Duration
	// ForwardTimeout bounds one request proxied to the leader, including
	// its answer.
	ForwardTimeout time.Duration
	// ForwardDialTimeout bounds connecting to the leader.
	ForwardDialTimeout time.Duration
	// ForwardMaxConns bounds the connections to the leader.
	ForwardMaxConns int
	// StreamWriteTimeout bounds writing one batch of events to a stream's
	// client; a client that reads slower is cut off.
	StreamWriteTimeout time.Duration
	// Auth turns on player identity by JWT; nil leaves it off (the player
	// comes from the request).
	Auth *AuthConfig
	// Play configures the WebSocket play endpoint.
	Play PlayConfig
	// ClusterSecret, when set, guards the admin and internal endpoints and
	// signs transfer tickets (cluster_auth.go, transfer.go); nil leaves
	// them open to whoever reaches the HTTP port.
	ClusterSecret []byte
	// TransferTicketTTL is how long a drained connection's transfer ticket
	// stays valid.
	TransferTicketTTL time.Duration
	// Logger receives the edge's logs.
	Logger *slog.Logger
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		MaxBodyBytes:       1 << 20,
		MaxBatchBodyBytes:  16 << 20,
		MaxBatchActions:    4096,
		BatchConcurrency:   256,
		RequestTimeout:     10 * time.Second,
		ForwardTimeout:     15 * time.Second,
		ForwardDialTimeout: 2 * time.Second,
		ForwardMaxConns:    256,
		StreamWriteTimeout: 10 * time.Second,
		Play:               DefaultPlayConfig(),
		TransferTicketTTL:  30 * time.Second,
		Logger:             slog.Default(),
	}
}

// Validate checks the config.
func (c Config) Validate() error {
	var errs []error
	if c.MaxBodyBytes < 1 {
		errs = append(errs, errors.New("config.MaxBodyBytes must be > 0"))
	}
	if c.MaxBatchBodyBytes < c.MaxBodyBytes {
		errs = append(errs, errors.New("config.MaxBatchBodyBytes must be >= MaxBodyBytes"))
	}
	if c.MaxBatchActions < 1 {
		errs = append(errs, errors.New("config.MaxBatchActions must be > 0"))
	}
	if c.BatchConcurrency < 1 {
		errs = append(errs, errors.New("config.BatchConcurrency must be > 0"))
	}
	if c.RequestTimeout <= 0 {
		errs = append(errs, errors.New("config.RequestTimeout must be > 0"))
	}
	if c.ForwardTimeout <= 0 {
		errs = append(errs, errors.New("config.ForwardTimeout must be > 0"))
	}
	if c.ForwardDialTimeout <= 0 {
		errs = append(errs, errors.New("config.ForwardDialTimeout must be > 0"))
	}
	if c.ForwardMaxConns < 1 {
		errs = append(errs, errors.New("config.ForwardMaxConns must be > 0"))
	}
	if c.StreamWriteTimeout <= 0 {
		errs = append(errs, errors.New("config.StreamWriteTimeout must be > 0"))
	}
	if c.Logger == nil {
		errs = append(errs, errors.New("config.Logger is required"))
	}
	if c.Auth != nil {
		if err := c.Auth.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("config.Auth: %w", err))
		}
	}
	if c.ClusterSecret != nil {
		if err := validClusterSecret(c.ClusterSecret); err != nil {
			errs = append(errs, fmt.Errorf("config.ClusterSecret: %w", err))
		}
	}
	if c.TransferTicketTTL <= 0 {
		errs = append(errs, errors.New("config.TransferTicketTTL must be > 0"))
	}
	if err := c.Play.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("config.Play: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("api config: %w", err)
	}
	return nil
}

// Server is the HTTP JSON edge of one node.
type Server struct {
	cfg     Config
	b       Backend
	router  Router // where a world's commands go (router.go)
	log     *slog.Logger
	mux     *http.ServeMux
	metrics *metrics
	fwd     *http.Client
	auth    *authenticator // nil: auth off
	wire    *wireCache     // encoded events shared by streams

	playMetrics *playMetrics

	// closing is cancelled by Close; open event streams end on it.
	closing context.Context
	cancel  context.CancelFunc
	mu      sync.Mutex
	closed  bool
	streams sync.WaitGroup
	plays   map[string]*playConn // session id → its connection on this node
	acks    *acker               // replicates the plays' acks (acks.go)
	udp     atomic.Pointer[UDP]  // the UDP input lane, when served (udp.go)

	hubMu sync.Mutex
	hubs  map[string]*hub // world → its play fan-out on this node (hub.go)
	fans  *fanout.Hub     // the event streams' shared fan-outs (eventstream.go)
	drain drainState
}

// New returns a Server over b that sends each world's commands where
// router says (NewSingleGroupRouter for one Raft group). Its request
// metrics are registered in reg (a fresh registry when nil), and /metrics
// serves reg.
func New(cfg Config, b Backend, router Router, reg *prometheus.Registry) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if b == nil {
		return nil, errors.New("api: nil backend")
	}
	if router == nil {
		return nil, errors.New("api: nil router")
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	pm, err := newPlayMetrics(reg)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, b: b, router: router, log: cfg.Logger, mux: http.NewServeMux(), metrics: m, playMetrics: pm, fwd: newForwardClient(cfg), wire: new(wireCache)}
	if cfg.Auth != nil {
		s.auth = newAuthenticator(*cfg.Auth)
	}
	if s.acks, err = newAcker(s, reg); err != nil {
		return nil, err
	}
	s.closing, s.cancel = context.WithCancel(context.Background())
	if s.fans, err = s.newEventFans(0); err != nil {
		return nil, err
	}
	s.routes(reg)
	return s, nil
}

func (s *Server) routes(reg *prometheus.Registry) {
	s.mux.HandleFunc("POST /v1/worlds", s.createWorld)
	s.mux.HandleFunc("GET /v1/worlds", s.listWorlds)
	s.mux.HandleFunc("PUT /v1/worlds/{world}/rules", s.updateRules)
	s.mux.HandleFunc("POST /v1/worlds/{world}/actions", s.act)
	s.mux.HandleFunc("POST /v1/worlds/{world}/actions:batch", s.actBatch)
	s.mux.HandleFunc("GET /v1/worlds/{world}/entities/{entity}", s.entity)
	s.mux.HandleFunc("GET /v1/worlds/{world}/events", s.events)
	s.mux.HandleFunc("GET /v1/worlds/{world}/play", s.play)
	s.mux.HandleFunc("GET /v1/worlds/{world}/sessions", s.presence)
	s.mux.HandleFunc("POST /v1/worlds/{world}/sessions/{id}/kick", s.kick)
	s.mux.HandleFunc("GET /v1/worlds/{world}/sessions:export", s.exportData)
	s.mux.HandleFunc("POST /v1/worlds/{world}/sessions:import", s.importData)
	s.mux.HandleFunc("GET /v1/worlds/{world}/bans", s.bans)
	s.mux.HandleFunc("POST /v1/worlds/{world}/bans", s.ban)
	s.mux.HandleFunc("DELETE /v1/worlds/{world}/bans/{player}", s.unban)
	s.mux.HandleFunc("GET /v1/worlds/{world}/hash", s.hash)
	s.mux.HandleFunc("GET /v1/status", s.status)
	s.mux.HandleFunc("POST /v1/cluster/join", s.join)
	s.mux.HandleFunc("DELETE /v1/cluster/nodes/{id}", s.removeNode)
	s.mux.HandleFunc("POST /v1/cluster/transfer-leadership", s.transferLeadership)
	s.mux.HandleFunc("POST /v1/cluster/snapshot", s.snapshot)
	s.mux.HandleFunc("POST /v1/node/drain", s.drainNode)
	s.mux.HandleFunc("DELETE /v1/node/drain", s.undrainNode)
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.HandleFunc("GET /readyz", s.readyz)
	s.mux.Handle("GET /metrics", metricsHandler(reg))
	s.internalRoutes()
}

// Handler returns the edge's HTTP handler.
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serve) }

// Close ends open event streams and waits for their handlers to return.
// Other requests are left to the http.Server's own shutdown.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.streams.Wait()
	s.fans.Close() // the fans stopped with their last streams: waits for them
	s.acks.stop()  // after the plays: their final flushes go through it
	s.fwd.CloseIdleConnections()
}

// serve wraps the mux: it answers unrouted requests in JSON, turns panics
// into 500s, and records every request's route, status and latency.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w}
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error("handler panic", "method", r.Method, "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
			if !sw.wrote {
				s.writeError(sw, fmt.Errorf("%w: %v", errInternal, v), false)
			}
		}
		route := r.Pattern
		if route == "" {
			route = "unmatched"
		}
		s.metrics.observe(route, sw.code(), time.Since(start))
	}()
	_, pattern := s.mux.Handler(r)
	if pattern == "" {
		// The mux's own 404/405 (or a path-cleaning redirect): keep its
		// status and headers, answer in JSON.
		s.mux.ServeHTTP(&jsonErrorWriter{statusWriter: sw}, r)
		return
	}
	if err := s.checkAccess(r, pattern); err != nil {
		s.writeError(sw, err, false)
		return
	}
	if err := CheckWireVersion(r.Header); err != nil {
		s.writeError(sw, err, false)
		return
	}
	s.mux.ServeHTTP(sw, r)
}

// statusWriter records the status a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote && code >= 200 {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.status, w.wrote = http.StatusOK, true
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (flush, deadlines).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) code() int {
	if !w.wrote {
		return http.StatusOK
	}
	return w.status
}

// jsonErrorWriter turns the mux's plain-text error answers into the JSON
// error shape, keeping their status and headers (Allow on a 405).
type jsonErrorWriter struct {
	*statusWriter
	replaced bool
}

func (w *jsonErrorWriter) WriteHeader(code int) {
	if code < 400 {
		w.statusWriter.WriteHeader(code)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	w.statusWriter.WriteHeader(code)
	body := ErrorBody{Code: CodeNotFound, Error: "no such route"}
	if code == http.StatusMethodNotAllowed {
		body = ErrorBody{Code: CodeMethodNotAllowed, Error: "method not allowed; allowed: " + h.Get("Allow")}
	}
	_ = json.NewEncoder(w.statusWriter).Encode(body)
	w.replaced = true
}

func (w *jsonErrorWriter) Write(b []byte) (int, error) {
	if w.replaced {
		return len(b), nil
	}
	return w.statusWriter.Write(b)
}

// writeJSON answers with status and v as JSON.
func (s *Server) writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if err := json.NewEncoder(w).Encode(v); err != nil {
		s.log.Debug("write answer", "err", err)
	}
}

// requestContext bounds one backend call.
func (s *Server) requestContext(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
}
