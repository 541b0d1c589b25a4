package play

import (
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/prometheus/client_golang/prometheus"
)

// Service serves play sessions (WebSocket, and the UDP input lane) over
// the edge's shared core: the play connections of this node, their hubs,
// their batched acks and the node's drain.
type Service struct {
	*edge.Core
	cfg         Config
	b           edge.Backend
	log         *slog.Logger
	playMetrics *playMetrics

	mu    sync.Mutex
	plays map[string]*playConn // session id → its connection on this node
	acks  *acker               // replicates the plays' acks (acks.go)
	udp   atomic.Pointer[UDP]  // the UDP input lane, when served (udp.go)

	hubMu sync.Mutex
	hubs  map[string]*hub // world → its play fan-out on this node (hub.go)
	drain drainState
}

// New returns the play service over core; its metrics go to reg.
func New(core *edge.Core, cfg Config, reg prometheus.Registerer) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	pm, err := newPlayMetrics(reg)
	if err != nil {
		return nil, err
	}
	s := &Service{Core: core, cfg: cfg, b: core.Backend(), log: core.Log(), playMetrics: pm}
	if s.acks, err = newAcker(s, reg); err != nil {
		return nil, err
	}
	return s, nil
}

// Register adds the play route and the node's drain routes to mux.
func (s *Service) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/worlds/{world}/play", s.play)
	mux.HandleFunc("POST /v1/node/drain", s.drainNode)
	mux.HandleFunc("DELETE /v1/node/drain", s.undrainNode)
}

// Close stops the acker; call it after the core's Close has ended the
// play connections, whose final flushes go through it.
func (s *Service) Close() { s.acks.stop() }
