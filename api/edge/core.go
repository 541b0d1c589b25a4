package edge

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"sync"
	"time"

	"github.com/gsd-dev/gsd/internal/tracing"
	"github.com/gsd-dev/gsd/spectator"
	"github.com/prometheus/client_golang/prometheus"
)

// Core is what every surface of the edge shares: the config, the backend
// and the router, the logger, request metrics, player identity, the
// internal client to other nodes, and the server's lifetime (Close ends
// the streams it tracks). Surfaces embed it.
type Core struct {
	cfg     Config
	b       Backend
	router  Router // where a world's commands go (router.go)
	log     *slog.Logger
	metrics *Metrics
	fwd     *http.Client   // node-to-node calls (peer.go)
	auth    *Authenticator // nil: auth off
	wire    *WireCache     // encoded events shared by streams and plays
	limiter *playerLimiter // nil: no per-player rate limit (ratelimit.go)
	// oldActRoute: leaders (by address) found without the compact act
	// route, and when (actforward.go).
	oldActRoute sync.Map
	// actQueues: play actions waiting for the compact act route, by
	// leader address and world; actSenders: their senders (actbatch.go).
	actQueues  sync.Map
	actSenders sync.WaitGroup

	// closing is cancelled by Close; open streams end on it.
	closing context.Context
	cancel  context.CancelFunc
	mu      sync.Mutex
	closed  bool
	streams sync.WaitGroup
}

// NewCore returns the shared part of a Server over b that sends each
// world's commands where router says. Its request metrics are registered
// in reg.
func NewCore(cfg Config, b Backend, router Router, reg prometheus.Registerer) (*Core, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if b == nil {
		return nil, errors.New("api: nil backend")
	}
	if router == nil {
		return nil, errors.New("api: nil router")
	}
	m, err := NewMetrics(reg)
	if err != nil {
		return nil, err
	}
	c := &Core{cfg: cfg, b: b, router: router, log: cfg.Logger, metrics: m, fwd: NewForwardClient(cfg), wire: new(WireCache)}
	if cfg.Auth != nil {
		c.auth = NewAuthenticator(*cfg.Auth)
	}
	if cfg.PlayerRate > 0 {
		c.limiter = newPlayerLimiter(cfg.PlayerRate, cfg.PlayerBurst, time.Now)
	}
	c.closing, c.cancel = context.WithCancel(context.Background())
	return c, nil
}

// Config returns the config.
func (s *Core) Config() Config { return s.cfg }

// Backend returns the node's store.
func (s *Core) Backend() Backend { return s.b }

// Log returns the edge's logger.
func (s *Core) Log() *slog.Logger { return s.log }

// Metrics returns the request metrics.
func (s *Core) Metrics() *Metrics { return s.metrics }

// Auth returns the player authenticator, nil when auth is off.
func (s *Core) Auth() *Authenticator { return s.auth }

// Wire returns the cache of encoded events.
func (s *Core) Wire() *WireCache { return s.wire }

// Closing is done once Close has begun.
func (s *Core) Closing() context.Context { return s.closing }

// StreamDone ends a stream OpenStream admitted.
func (s *Core) StreamDone() { s.streams.Done() }

// Close refuses new streams, ends the open ones and waits for their
// handlers to return, and for the senders of forwarded play actions
// (their calls are cancelled).
func (s *Core) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.streams.Wait()
	s.actSenders.Wait()
}

// CloseIdle drops the idle node-to-node connections.
func (s *Core) CloseIdle() { s.fwd.CloseIdleConnections() }

// OpenStream registers a stream unless the server is closing; the caller
// calls StreamDone when it returns.
func (s *Core) OpenStream() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.streams.Add(1)
	return true
}

// Headers the edge reads and writes.
const (
	// HeaderForwarded marks a request a follower proxied to the leader. A
	// marked request that lands on a non-leader is refused, never forwarded
	// again, so a stale leader view cannot make requests loop.
	HeaderForwarded = "X-Gsd-Forwarded"
	// HeaderLeader names the leader that answered a forwarded request.
	HeaderLeader = "X-Gsd-Leader"
	// HeaderGroup names the group a forwarding node routed the request
	// to (Route.GroupID): the receiver follows it for a world its own
	// shard map does not place yet (GroupRouter).
	HeaderGroup = "X-Gsd-Group"
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
	// StreamQueue is how many chunks of its world's shared fan-out an
	// event stream may have waiting before the fan lets it go (it then
	// catches up from its own subscription); 0 means fanout.DefaultQueue.
	StreamQueue int
	// Auth turns on player identity by JWT; nil leaves it off (the player
	// comes from the request).
	Auth *AuthConfig
	// ClusterSecret, when set, guards the admin and internal endpoints and
	// signs transfer tickets (cluster_auth.go, transfer.go); nil leaves
	// them open to whoever reaches the HTTP port.
	ClusterSecret []byte
	// TransferTicketTTL is how long a drained connection's transfer ticket
	// stays valid.
	TransferTicketTTL time.Duration
	// PlayerRate is each player's sustained rate of actions per second at
	// this node's edge (ratelimit.go); 0 turns the limit off.
	PlayerRate float64
	// PlayerBurst is how many actions a player may send at once above
	// PlayerRate (the bucket's size); at least 1 when PlayerRate is set.
	PlayerBurst int
	// PeerTLS, when set, is the TLS this node calls other nodes with (over
	// https, peer_tls.go): the cluster's mutual TLS. Nil calls them over
	// plain HTTP.
	PeerTLS *tls.Config
	// PeerCert, when set, must accept the TLS connection of every
	// node-to-node request and of a join, so that only holders of a
	// certificate of the cluster reach them (nil: not checked); it returns
	// the node id the certificate names, which a join must ask to add.
	PeerCert func(*tls.ConnectionState) (node string, err error)
	// Tracer traces the action path (internal/tracing); nil leaves tracing
	// off.
	Tracer *tracing.Tracer
	// Checkpoints gives keyframes the worlds' signed audit checkpoints
	// (docs/ANTICHEAT.md, "Checkpoints in keyframes"); nil: keyframes
	// carry none. api.New sets it from its Audit when that offers them.
	Checkpoints spectator.CheckpointFunc
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
	if c.StreamQueue < 0 {
		errs = append(errs, errors.New("config.StreamQueue must be >= 0"))
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
		if err := ValidClusterSecret(c.ClusterSecret); err != nil {
			errs = append(errs, fmt.Errorf("config.ClusterSecret: %w", err))
		}
	}
	if c.PlayerRate < 0 || math.IsNaN(c.PlayerRate) || math.IsInf(c.PlayerRate, 0) {
		errs = append(errs, errors.New("config.PlayerRate must be a finite number >= 0"))
	}
	if c.PlayerRate > 0 && c.PlayerBurst < 1 {
		errs = append(errs, errors.New("config.PlayerBurst must be >= 1 when PlayerRate is set"))
	}
	if c.TransferTicketTTL <= 0 {
		errs = append(errs, errors.New("config.TransferTicketTTL must be > 0"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("api config: %w", err)
	}
	return nil
}

// writeJSON answers with status and v as JSON.
func (s *Core) WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if err := json.NewEncoder(w).Encode(v); err != nil {
		s.log.Debug("write answer", "err", err)
	}
}

// requestContext bounds one backend call.
func (s *Core) RequestContext(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
}

// Router returns where a world's commands go.
func (s *Core) Router() Router { return s.router }
