package api

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gsd-dev/gsd/api/admin"
	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/api/peer"
	"github.com/gsd-dev/gsd/api/public"
	"github.com/gsd-dev/gsd/api/streams"
	"github.com/prometheus/client_golang/prometheus"
)

// Config configures a Server: the edge's shared settings and the play
// endpoint's.
type Config struct {
	edge.Config
	// Play configures the WebSocket play endpoint.
	Play PlayConfig
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{Config: edge.DefaultConfig(), Play: DefaultPlayConfig()}
}

// Validate checks the config.
func (c Config) Validate() error {
	if err := c.Config.Validate(); err != nil {
		return err
	}
	if err := c.Play.Validate(); err != nil {
		return fmt.Errorf("api config: config.Play: %w", err)
	}
	return nil
}

// Server is the HTTP edge of one node: the surfaces over one edge.Core.
type Server struct {
	*edge.Core
	cfg Config
	b   edge.Backend
	log *slog.Logger
	mux *http.ServeMux

	public *public.API      // worlds, actions, reads (api/public)
	admin  *admin.API       // cluster, sessions, bans, health (api/admin)
	events *streams.Service // NDJSON event streams (api/streams)
	peer   *peer.API        // node-to-node routes (api/peer)

	playMetrics *playMetrics

	mu    sync.Mutex
	plays map[string]*playConn // session id → its connection on this node
	acks  *acker               // replicates the plays' acks (acks.go)
	udp   atomic.Pointer[UDP]  // the UDP input lane, when served (udp.go)

	hubMu sync.Mutex
	hubs  map[string]*hub // world → its play fan-out on this node (hub.go)
	drain drainState
}

// New returns a Server over b that sends each world's commands where
// router says (NewSingleGroupRouter for one Raft group). Its request
// metrics are registered in reg (a fresh registry when nil), and /metrics
// serves reg.
func New(cfg Config, b edge.Backend, router edge.Router, reg *prometheus.Registry) (*Server, error) {
	if err := cfg.Play.Validate(); err != nil {
		return nil, fmt.Errorf("api config: config.Play: %w", err)
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	core, err := edge.NewCore(cfg.Config, b, router, reg)
	if err != nil {
		return nil, err
	}
	pm, err := newPlayMetrics(reg)
	if err != nil {
		return nil, err
	}
	s := &Server{Core: core, cfg: cfg, b: b, log: cfg.Logger, mux: http.NewServeMux(), playMetrics: pm,
		public: public.New(core), admin: admin.New(core), peer: peer.New(core)}
	if s.acks, err = newAcker(s, reg); err != nil {
		return nil, err
	}
	if s.events, err = streams.New(core, 0); err != nil {
		return nil, err
	}
	s.routes(reg)
	return s, nil
}

func (s *Server) routes(reg *prometheus.Registry) {
	s.mux.HandleFunc("POST /v1/worlds", s.public.CreateWorld)
	s.mux.HandleFunc("GET /v1/worlds", s.public.ListWorlds)
	s.mux.HandleFunc("PUT /v1/worlds/{world}/rules", s.public.UpdateRules)
	s.mux.HandleFunc("POST /v1/worlds/{world}/actions", s.public.Act)
	s.mux.HandleFunc("POST /v1/worlds/{world}/actions:batch", s.public.ActBatch)
	s.mux.HandleFunc("GET /v1/worlds/{world}/entities/{entity}", s.public.Entity)
	s.mux.HandleFunc("GET /v1/worlds/{world}/events", func(w http.ResponseWriter, r *http.Request) { s.events.Events(w, r) })
	s.mux.HandleFunc("GET /v1/worlds/{world}/play", s.play)
	s.mux.HandleFunc("GET /v1/worlds/{world}/sessions", s.admin.Presence)
	s.mux.HandleFunc("POST /v1/worlds/{world}/sessions/{id}/kick", s.admin.Kick)
	s.mux.HandleFunc("GET /v1/worlds/{world}/sessions:export", s.admin.ExportData)
	s.mux.HandleFunc("POST /v1/worlds/{world}/sessions:import", s.admin.ImportData)
	s.mux.HandleFunc("GET /v1/worlds/{world}/bans", s.admin.Bans)
	s.mux.HandleFunc("POST /v1/worlds/{world}/bans", s.admin.Ban)
	s.mux.HandleFunc("DELETE /v1/worlds/{world}/bans/{player}", s.admin.Unban)
	s.mux.HandleFunc("GET /v1/worlds/{world}/hash", s.public.Hash)
	s.mux.HandleFunc("GET /v1/status", s.admin.Status)
	s.mux.HandleFunc("POST /v1/cluster/join", s.admin.Join)
	s.mux.HandleFunc("DELETE /v1/cluster/nodes/{id}", s.admin.RemoveNode)
	s.mux.HandleFunc("POST /v1/cluster/transfer-leadership", s.admin.TransferLeadership)
	s.mux.HandleFunc("POST /v1/cluster/snapshot", s.admin.Snapshot)
	s.mux.HandleFunc("POST /v1/node/drain", s.drainNode)
	s.mux.HandleFunc("DELETE /v1/node/drain", s.undrainNode)
	s.mux.HandleFunc("GET /healthz", s.admin.Healthz)
	s.mux.HandleFunc("GET /readyz", s.admin.Readyz)
	s.mux.Handle("GET /metrics", edge.MetricsHandler(reg))
	s.peer.Register(s.mux, peer.Handlers{
		Act: s.public.Act, ActBatch: s.public.ActBatch, LinearizableEntity: s.public.LinearizableEntity,
		CreateWorld: s.public.CreateWorld, UpdateRules: s.public.UpdateRules,
		Join: s.admin.Join, RemoveNode: s.admin.RemoveNode, TransferLeadership: s.admin.TransferLeadership,
		Kick: s.admin.Kick, Ban: s.admin.Ban, Unban: s.admin.Unban, ExportData: s.admin.ExportData, ImportData: s.admin.ImportData,
	})
}

// Handler returns the edge's HTTP handler.
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serve) }

// Close ends open event streams and waits for their handlers to return.
// Other requests are left to the http.Server's own shutdown.
func (s *Server) Close() {
	s.Core.Close()
	s.events.Close() // the fans stopped with their last streams: waits for them
	s.acks.stop()    // after the plays: their final flushes go through it
	s.CloseIdle()
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
				s.WriteError(sw, fmt.Errorf("%w: %v", edge.ErrInternal, v), false)
			}
		}
		route := r.Pattern
		if route == "" {
			route = "unmatched"
		}
		s.Metrics().Observe(route, sw.code(), time.Since(start))
	}()
	_, pattern := s.mux.Handler(r)
	if pattern == "" {
		// The mux's own 404/405 (or a path-cleaning redirect): keep its
		// status and headers, answer in JSON.
		s.mux.ServeHTTP(&jsonErrorWriter{statusWriter: sw}, r)
		return
	}
	if err := s.checkAccess(r, pattern); err != nil {
		s.WriteError(sw, err, false)
		return
	}
	if err := edge.CheckWireVersion(r.Header); err != nil {
		s.WriteError(sw, err, false)
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
	body := edge.ErrorBody{Code: edge.CodeNotFound, Error: "no such route"}
	if code == http.StatusMethodNotAllowed {
		body = edge.ErrorBody{Code: edge.CodeMethodNotAllowed, Error: "method not allowed; allowed: " + h.Get("Allow")}
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
