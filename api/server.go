package api

import (
	"fmt"
	"net"
	"net/http"

	"github.com/gsd-dev/gsd/api/admin"
	auditapi "github.com/gsd-dev/gsd/api/audit"
	"github.com/gsd-dev/gsd/api/edge"
	moderationapi "github.com/gsd-dev/gsd/api/moderation"
	"github.com/gsd-dev/gsd/api/peer"
	"github.com/gsd-dev/gsd/api/play"
	"github.com/gsd-dev/gsd/api/public"
	relaysapi "github.com/gsd-dev/gsd/api/relays"
	"github.com/gsd-dev/gsd/api/streams"
	"github.com/gsd-dev/gsd/api/watch"
	"github.com/prometheus/client_golang/prometheus"
)

// Config configures a Server: the edge's shared settings and the play
// endpoint's.
type Config struct {
	edge.Config
	// Play configures the WebSocket play endpoint.
	Play PlayConfig
	// Audit is the node's audit logs (an *auditor.Auditor), served under
	// /v1/worlds/{world}/audit/; nil leaves those routes out.
	Audit auditapi.Logs
	// Watch configures the watch route's HTTP segments (zero: the
	// defaults, watch.DefaultSegmentConfig).
	Watch watch.SegmentConfig
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
	if c.Watch != (watch.SegmentConfig{}) {
		if err := c.Watch.Validate(); err != nil {
			return fmt.Errorf("api config: config.Watch: %w", err)
		}
	}
	return nil
}

// Server is the HTTP edge of one node: the surfaces over one edge.Core,
// each registering its own routes on one mux.
type Server struct {
	*edge.Core
	mux *http.ServeMux

	public *public.API      // worlds, actions, reads (api/public)
	admin  *admin.API       // cluster, sessions, bans, health (api/admin)
	events *streams.Service // NDJSON event streams (api/streams)
	play   *play.Service    // play sessions: WebSocket, UDP, drain (api/play)
	peer   *peer.API        // node-to-node routes (api/peer)
	watch  *watch.Service   // spectators\' watch route (api/watch)
	// moderation is the review of anti-cheat flags (api/moderation).
	moderation *moderationapi.API
	relays     *relaysapi.API // the relay registry (api/relays)
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
	if cp, ok := cfg.Audit.(interface{ CheckpointAt(string, uint64) []byte }); ok && cfg.Checkpoints == nil {
		cfg.Checkpoints = cp.CheckpointAt // keyframes carry the audit log's checkpoints
	}
	core, err := edge.NewCore(cfg.Config, b, router, reg)
	if err != nil {
		return nil, err
	}
	s := &Server{Core: core, mux: http.NewServeMux(), public: public.New(core), admin: admin.New(core), peer: peer.New(core)}
	if s.play, err = play.New(core, cfg.Play, reg); err != nil {
		return nil, err
	}
	if s.events, err = streams.New(core); err != nil {
		return nil, err
	}
	if s.watch, err = watch.New(core, reg); err != nil {
		return nil, err
	}
	if cfg.Watch != (watch.SegmentConfig{}) {
		if err := s.watch.SetSegments(cfg.Watch); err != nil {
			s.watch.Close()
			return nil, fmt.Errorf("api config: config.Watch: %w", err)
		}
	}
	if s.moderation, err = moderationapi.New(core, reg); err != nil {
		return nil, err
	}
	s.public.Register(s.mux)
	s.admin.Register(s.mux)
	s.events.Register(s.mux)
	s.play.Register(s.mux)
	s.watch.Register(s.mux)
	s.moderation.Register(s.mux)
	s.relays = relaysapi.New(core)
	s.relays.Register(s.mux)
	if cfg.Audit != nil {
		auditapi.New(core, cfg.Audit).Register(s.mux)
	}
	s.mux.Handle("GET /metrics", edge.MetricsHandler(reg))
	s.peer.Register(s.mux, peer.Handlers{
		Act: s.public.Act, ActBatch: s.public.ActBatch, LinearizableEntity: s.public.LinearizableEntity,
		CreateWorld: s.public.CreateWorld, UpdateRules: s.public.UpdateRules, DeleteWorld: s.admin.DeleteWorld,
		Join: s.admin.Join, RemoveNode: s.admin.RemoveNode, TransferLeadership: s.admin.TransferLeadership,
		Kick: s.admin.Kick, Ban: s.admin.Ban, Unban: s.admin.Unban, ExportData: s.admin.ExportData, ImportData: s.admin.ImportData,
		WritePlayerData: s.admin.WritePlayerData,
	})
	s.peer.RegisterMove(s.mux)
	return s, nil
}

// Moderation returns the moderation surface: the writer of the node's
// detectors' flags (anticheat/moderation.Recorder).
func (s *Server) Moderation() *moderationapi.API { return s.moderation }

// Handler returns the edge's HTTP handler.
func (s *Server) Handler() http.Handler { return s.Core.Handler(s.mux) }

// Close ends open event streams and waits for their handlers to return.
// Other requests are left to the http.Server's own shutdown.
func (s *Server) Close() {
	s.Core.Close()
	s.events.Close() // the fans stopped with their last streams: waits for them
	s.watch.Close()
	s.play.Close() // after the plays: their final flushes go through it
	s.CloseIdle()
}

// ServeUDP serves the UDP input lane on pc (play.Service.ServeUDP).
func (s *Server) ServeUDP(pc net.PacketConn, cfg UDPConfig, reg prometheus.Registerer) (*UDP, error) {
	return s.play.ServeUDP(pc, cfg, reg)
}
