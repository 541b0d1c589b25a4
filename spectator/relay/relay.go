package relay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/gsd-dev/gsd/anticheat/audit"
	"github.com/gsd-dev/gsd/fanout"
	"github.com/gsd-dev/gsd/spectator"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Defaults of a relay's Config.
const (
	DefaultMaxViewers   = 10000
	DefaultRetryAfter   = 5 * time.Second
	DefaultMaxEvents    = 1 << 20
	DefaultRetryMin     = 100 * time.Millisecond
	DefaultRetryMax     = 5 * time.Second
	DefaultWriteTimeout = 10 * time.Second
	DefaultOpenTimeout  = 10 * time.Second
	DefaultIdleTimeout  = time.Minute
	// DefaultUpstreamLinger: half a default tick (spectator.DefaultTick).
	DefaultUpstreamLinger = 50 * time.Millisecond
)

// The forms a relay may ask its upstream's event lines in
// (Config.UpstreamForm).
const (
	UpstreamFormLean  = "lean"
	UpstreamFormWhole = "whole"
)

// Config configures a Relay.
type Config struct {
	// Upstream is the base URL of what the relay follows: a gsd node or
	// another relay ("http://10.0.0.1:8080"; required).
	Upstream string
	// Token is the bearer token the relay shows the upstream: its role
	// names the viewer class whose view the relay receives (and so what
	// every viewer of the relay sees). Empty: none (an upstream with auth
	// off).
	Token string
	// TokenSource, when set, gives the token for each request to the
	// upstream instead of Token (a file an operator rotates before the
	// token expires); while a follow's upstream refuses the token (401)
	// it retries rather than ends.
	TokenSource func() (string, error)
	// View is the viewer class the relay asks the upstream for (view=);
	// with auth on it must be the Token's role. Viewers of the relay get
	// it whether or not they name it; one naming another is refused.
	View string
	// MaxViewers bounds the relay's watch and event streams together;
	// beyond it a viewer gets 503 overloaded with Retry-After.
	MaxViewers int
	// RetryAfter is what a refused viewer is told to wait.
	RetryAfter time.Duration
	// MaxEvents bounds the events held per world (the relay's archive;
	// it may hold an eighth more before it drops the oldest);
	// a stream asked from before them gets 410 archive_gap. The dropped
	// ones are kept as a state that seeds the watchers' pipelines (one a
	// viewer's delay= makes too new to show gets 4410 archive_gap).
	MaxEvents int
	// RetryMin and RetryMax bound the backoff between upstream streams.
	RetryMin, RetryMax time.Duration
	// WriteTimeout bounds one write to a viewer.
	WriteTimeout time.Duration
	// OpenTimeout bounds the wait for the upstream's answer to a stream's
	// request.
	OpenTimeout time.Duration
	// UpstreamLinger is the linger= the relay asks its upstream's event
	// stream for: the upstream then writes (and compresses) a window of
	// events at a time instead of each commit, which costs the voters
	// fewer bytes and writes per relay; the relay's viewers get a delta
	// per tick anyway. 0 asks for none.
	UpstreamLinger time.Duration
	// UpstreamForm is the form of the event lines the relay asks its
	// upstream for: UpstreamFormLean (the default: form=lean, lines
	// without what the relay rebuilds exactly, a third fewer bytes from
	// the voters) or UpstreamFormWhole (whole lines, as relays asked
	// before the lean form).
	UpstreamForm string
	// IdleTimeout is how long the relay keeps following a world nobody
	// watches (the next viewer after it reads the world from seq 1 again).
	IdleTimeout time.Duration
	// Pipeline is the template of the relay's pipelines (spectator.Config:
	// tick, keyframe interval, queue per viewer, skew bound).
	Pipeline spectator.Config
	// Segments configures the segmented HTTP variant of the watch route
	// (watch/index.json, watch/seg/{n}.ndjson), cut as a node cuts it.
	Segments spectator.SegmentConfig
	// HTTPClient makes the upstream requests (no overall timeout: a
	// stream lasts).
	HTTPClient *http.Client
	// Logger logs the upstream's drops and refusals.
	Logger *slog.Logger
	// AuditKeys, when set, are the cluster's audit public keys: the relay
	// verifies the upstream's signed checkpoints of each world it follows
	// and drops an upstream that sends a forged, older or inconsistent
	// one (verify.go).
	AuditKeys []audit.VerifyingKey
	// CheckpointInterval is how often a verifying relay asks for a
	// world's newest checkpoint (0: DefaultCheckpointInterval).
	CheckpointInterval time.Duration
}

// DefaultConfig returns a Config with the defaults; Upstream is left to
// the caller.
func DefaultConfig() Config {
	return Config{MaxViewers: DefaultMaxViewers, RetryAfter: DefaultRetryAfter, MaxEvents: DefaultMaxEvents,
		RetryMin: DefaultRetryMin, RetryMax: DefaultRetryMax, WriteTimeout: DefaultWriteTimeout,
		OpenTimeout: DefaultOpenTimeout, IdleTimeout: DefaultIdleTimeout, UpstreamLinger: DefaultUpstreamLinger,
		UpstreamForm: UpstreamFormLean,
		Pipeline:     spectator.DefaultConfig(),
		Segments:     spectator.DefaultSegmentConfig(),
		HTTPClient:   &http.Client{}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

// Validate reports a Config a Relay cannot run with.
func (c Config) Validate() error {
	u, err := url.Parse(c.Upstream)
	switch {
	case c.Upstream == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return fmt.Errorf("relay: Upstream must be an http(s) URL, got %q", c.Upstream)
	case c.MaxViewers < 1:
		return errors.New("relay: MaxViewers must be at least 1")
	case c.RetryAfter < time.Second:
		return errors.New("relay: RetryAfter must be at least 1s")
	case c.MaxEvents < 1:
		return errors.New("relay: MaxEvents must be at least 1")
	case c.RetryMin <= 0 || c.RetryMax < c.RetryMin:
		return errors.New("relay: want 0 < RetryMin <= RetryMax")
	case c.UpstreamLinger < 0 || c.UpstreamLinger > maxLinger:
		return fmt.Errorf("relay: UpstreamLinger must be from 0 to %s", maxLinger)
	case c.UpstreamForm != UpstreamFormLean && c.UpstreamForm != UpstreamFormWhole:
		return fmt.Errorf("relay: UpstreamForm must be %q or %q, got %q", UpstreamFormLean, UpstreamFormWhole, c.UpstreamForm)
	case c.WriteTimeout <= 0 || c.OpenTimeout <= 0 || c.IdleTimeout <= 0:
		return errors.New("relay: WriteTimeout, OpenTimeout and IdleTimeout must be > 0")
	case c.HTTPClient == nil || c.Logger == nil:
		return errors.New("relay: HTTPClient and Logger are required")
	}
	if err := c.Segments.Validate(); err != nil {
		return fmt.Errorf("relay: Segments: %w", err)
	}
	// The pipeline's own fields are set per world; check the rest.
	p := c.Pipeline
	p.World, p.Access, p.Subscribe = "w", &spectator.Access{}, func(string, uint64) (fanout.Subscription, error) { return nil, nil }
	if err := p.Validate(); err != nil {
		return fmt.Errorf("relay: Pipeline: %w", err)
	}
	return nil
}

// Relay serves the watch and event streams of the worlds its viewers ask
// for, each followed once from the upstream. Safe for concurrent use.
type Relay struct {
	cfg     Config
	log     *slog.Logger
	hub     *spectator.Hub
	segs    *spectator.Segments
	reg     *prometheus.Registry
	metrics metrics
	ctx     context.Context // ends at Close: the viewers' streams end with it
	cancel  context.CancelFunc

	// checkpoints are the audit checkpoints accepted (nil: no AuditKeys).
	checkpoints *checkpoints

	mu       sync.Mutex
	follows  map[string]*follow
	viewers  int
	watchers map[string]int        // viewers per world
	idle     map[string]*idleTimer // worlds nobody watches
	closed   bool
	opening  map[string]*opening // one first request per world at a time
}

// New returns a relay; it follows nothing until a viewer asks.
func New(cfg Config) (*Relay, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := &Relay{cfg: cfg, log: cfg.Logger, reg: prometheus.NewRegistry(),
		follows: make(map[string]*follow), opening: make(map[string]*opening),
		watchers: make(map[string]int), idle: make(map[string]*idleTimer)}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	r.metrics = newMetrics()
	if err := r.metrics.register(r.reg); err != nil {
		r.cancel()
		return nil, err
	}
	cps, err := newCheckpoints(cfg.AuditKeys, r.reg)
	if err != nil {
		r.cancel()
		return nil, err
	}
	r.checkpoints = cps
	// The upstream has cut the events to the relay's view: the relay's
	// pipelines show all of what they receive (rules with no restricted
	// field, and the views the relay's view may see: views.go), with the
	// delay a viewer asks on top of the upstream's.
	pipe := cfg.Pipeline
	pipe.Filtered = true // the seqs the view saw nothing of are not sent
	if r.checkpoints != nil {
		pipe.Checkpoint = r.checkpoints.at // keyframes carry what was verified
	}
	hub, err := spectator.NewHub(spectator.HubConfig{
		Subscribe: r.subscribe,
		Seed:      r.seed,
		Rules:     r.rules, // the views it learned of the upstream (views.go)
		Pipeline:  pipe,
		// A caller polling the views route reads a pipeline that
		// follows the events, as on a node.
		ViewsLinger: spectator.DefaultViewsLinger,
	})
	if err != nil {
		r.cancel()
		return nil, err
	}
	r.hub = hub
	r.segs, _ = spectator.NewSegments(hub, cfg.Segments, cfg.Logger) // the config is valid
	return r, nil
}

// subscribe opens a reader of world's held events (the hub's feed).
func (r *Relay) subscribe(world string, from uint64) (fanout.Subscription, error) {
	r.mu.Lock()
	f := r.follows[world]
	r.mu.Unlock()
	if f == nil {
		return nil, fmt.Errorf("%w: world %s is not followed", ErrClosed, world)
	}
	return f.subscribe(from), nil
}

// seed returns the state a pipeline of world starts from: after the
// events the relay no longer holds (nil: it holds them all).
func (r *Relay) seed(world string) (*spectator.State, error) {
	r.mu.Lock()
	f := r.follows[world]
	r.mu.Unlock()
	if f == nil {
		return nil, nil
	}
	return f.seed(), nil
}

// followOf returns world's follow, opening it (and the upstream's stream)
// when none runs.
func (r *Relay) followOf(ctx context.Context, world string) (*follow, error) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, ErrClosed
	}
	if f := r.follows[world]; f != nil && !f.failed() {
		r.mu.Unlock()
		return f, nil
	}
	om := r.opening[world]
	if om == nil {
		om = &opening{}
		r.opening[world] = om
	}
	om.waiting++
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		if om.waiting--; om.waiting == 0 {
			delete(r.opening, world)
		}
		r.mu.Unlock()
	}()

	om.mu.Lock() // one viewer opens; the others wait for its follow
	defer om.mu.Unlock()
	r.mu.Lock()
	old := r.follows[world]
	if old != nil && !old.failed() {
		r.mu.Unlock()
		return old, nil
	}
	r.mu.Unlock()
	if old != nil {
		old.stop()
	}
	f, err := r.open(ctx, world)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		f.stop()
		return nil, ErrClosed
	}
	r.follows[world] = f
	r.mu.Unlock()
	return f, nil
}

// opening is the viewers opening one world's follow: the first opens it,
// the others wait for it.
type opening struct {
	mu      sync.Mutex
	waiting int // under the relay's lock
}

// admit counts a viewer of world in, or refuses it when the relay is
// full; a world followed while idle is no longer.
func (r *Relay) admit(world string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ErrClosed
	}
	if r.viewers >= r.cfg.MaxViewers {
		r.metrics.refused.Inc()
		return fmt.Errorf("%w: %d viewers", ErrFull, r.viewers)
	}
	r.viewers++
	r.watchers[world]++
	if it := r.idle[world]; it != nil {
		it.timer.Stop()
		delete(r.idle, world)
	}
	r.metrics.viewers.Inc()
	return nil
}

// leave counts a viewer of world out; the world's last starts its idle
// time, after which the relay stops following it.
func (r *Relay) leave(world string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.viewers--
	r.metrics.viewers.Dec()
	if r.watchers[world]--; r.watchers[world] > 0 {
		return
	}
	delete(r.watchers, world)
	if r.closed {
		return
	}
	it := &idleTimer{}
	it.timer = time.AfterFunc(r.cfg.IdleTimeout, func() { r.expire(world, it) })
	r.idle[world] = it
}

// idleTimer stops following a world nobody watched for IdleTimeout.
type idleTimer struct{ timer *time.Timer }

// expire stops following world if it is still idle since it.
func (r *Relay) expire(world string, it *idleTimer) {
	r.mu.Lock()
	if r.idle[world] != it || r.watchers[world] > 0 || r.closed {
		r.mu.Unlock()
		return
	}
	delete(r.idle, world)
	f := r.follows[world]
	delete(r.follows, world)
	r.mu.Unlock()
	if f != nil {
		r.log.Info("nobody watches the world: following stopped", "world", world)
		f.stop()
	}
}

// following returns how many worlds the relay follows.
func (r *Relay) following() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.follows)
}

// Viewers returns how many watch and event streams the relay serves.
func (r *Relay) Viewers() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.viewers
}

// Handler returns the relay's routes: the watch and event streams, the
// watch's segments, and /metrics and /healthz.
func (r *Relay) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/worlds/{world}/watch", r.Watch)
	mux.HandleFunc("GET /v1/worlds/{world}/events", r.Events)
	mux.HandleFunc("GET /v1/worlds/{world}/watch/index.json", r.Index)
	mux.HandleFunc("GET /v1/worlds/{world}/watch/seg/{seg}", r.Segment)
	mux.HandleFunc("GET /v1/worlds/{world}/views", r.Views)
	mux.HandleFunc("GET /v1/worlds/{world}/views/{name}", r.View)
	r.registerAudit(mux)
	mux.Handle("GET /metrics", promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	return mux
}

// Close ends every viewer's stream and stops following.
func (r *Relay) Close() {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	r.closed = true
	r.cancel()
	follows := r.follows
	r.follows = map[string]*follow{}
	for _, it := range r.idle {
		it.timer.Stop()
	}
	r.mu.Unlock()
	r.segs.Close()
	r.hub.Close()
	for _, f := range follows {
		f.stop()
	}
}
