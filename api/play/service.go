package play

import (
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/fanout"
	"github.com/gsd-dev/gsd/fsm"
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
	watch *watcher             // the plays' periodic checks and pings (ws_watch.go)
	udp   atomic.Pointer[UDP]  // the UDP input lane, when served (udp.go)
	// fenced: the worlds of this node that moved to another shard, as of
	// the watcher's last round (ws_watch.go), whose connections it ends.
	fenced atomic.Pointer[map[string]fsm.Fence]

	hubMu    sync.Mutex
	hubs     map[string]*hub          // world → its play fan-out on this node (hub.go)
	viewHubs map[hubKey]*hub          // a view of a world → its hub (views.go)
	fans     *fanout.Fans[*playBatch] // the worlds' feeds, read and prepared once (hub.go)
	vis      *edge.Visibility         // worlds' rules, views' prepared events (views.go)
	drain    drainState
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
	s := &Service{Core: core, cfg: cfg, b: core.Backend(), log: core.Log(), playMetrics: pm, vis: edge.NewVisibility(core.Backend())}
	if s.acks, err = newAcker(s, reg); err != nil {
		return nil, err
	}
	s.watch = newWatcher(s)
	if s.fans, err = s.newFans(fanout.DefaultQueue); err != nil {
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

// Close stops the watcher, the acker and the worlds' fans; call it after the core's
// Close has ended the play connections, whose final flushes go through
// the acker.
func (s *Service) Close() {
	s.watch.stop()
	s.acks.stop()
	s.fans.Close()
}

// newFans returns the fans that read the worlds' feeds for the hubs, each
// hub's queue of batches bounded by queue (tests lower it).
func (s *Service) newFans(queue int) (*fanout.Fans[*playBatch], error) {
	return fanout.NewFans(fanout.FansConfig[*playBatch]{Queue: queue, Reads: fanout.DefaultReads,
		Subscribe: func(world string, from uint64) (fanout.Subscription, error) {
			sub, err := s.b.Subscribe(world, from)
			if err != nil {
				return nil, err // not a typed nil in the interface
			}
			return sub, nil
		},
		Prepare: func(evs []*fsm.Event) (*playBatch, error) {
			hevs, err := s.prepare(evs, s.cfg.CoalesceBulk)
			if err != nil {
				return nil, err
			}
			return &playBatch{evs: evs, hevs: hevs}, nil
		}})
}
