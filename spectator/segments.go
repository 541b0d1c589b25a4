package spectator

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/gsd-dev/gsd/wire"
)

// Defaults of a SegmentConfig.
const (
	DefaultSegmentDuration = 2 * time.Second
	DefaultSegmentKeep     = 30
	DefaultSegmentIdle     = 30 * time.Second
	DefaultSegmenters      = 256
)

// SegmentConfig configures the cutting of views into segments (the
// segmented HTTP variant of the watch route, on nodes and relays).
type SegmentConfig struct {
	// Duration is how much time one segment covers; segment n covers the
	// clock from n×Duration to (n+1)×Duration since the Unix epoch, so a
	// number names the same stretch of time whenever it is asked.
	Duration time.Duration
	// Keep is how many finished segments a (world, view, delay) keeps.
	Keep int
	// Idle is how long a (world, view, delay) goes on being cut into
	// segments after its last request.
	Idle time.Duration
	// Max bounds how many (world, view, delay) are cut at once (each
	// holds a hub viewer and Keep segments); one more is refused
	// (ErrSegmentsFull) until one goes idle.
	Max int
}

// DefaultSegmentConfig returns a SegmentConfig with the defaults.
func DefaultSegmentConfig() SegmentConfig {
	return SegmentConfig{Duration: DefaultSegmentDuration, Keep: DefaultSegmentKeep, Idle: DefaultSegmentIdle, Max: DefaultSegmenters}
}

// Validate reports a SegmentConfig segments cannot be cut with.
func (c SegmentConfig) Validate() error {
	switch {
	case c.Duration < 10*time.Millisecond:
		return fmt.Errorf("watch: segment duration %s is under 10ms", c.Duration)
	case c.Keep < 1:
		return fmt.Errorf("watch: segments kept must be at least 1, got %d", c.Keep)
	case c.Idle < c.Duration:
		return fmt.Errorf("watch: segment idle time %s is under a segment (%s)", c.Idle, c.Duration)
	case c.Max < 1:
		return fmt.Errorf("watch: views cut at once must be at least 1, got %d", c.Max)
	}
	return nil
}

// ErrSegmentsFull reports that Max views are cut already.
var ErrSegmentsFull = errors.New("gsd/spectator: too many views cut into segments")

// SegmentKey is what a Cutter cuts: a world as one viewer sees it.
type SegmentKey struct {
	World  string
	Viewer Viewer
}

// Segment is a finished segment: its lines, encoded once, immutable.
type Segment struct {
	N           int64
	First, Last uint64 // the seqs of its opening keyframe and its last frame
	Data        []byte
	ETag        string

	gzOnce sync.Once // segments_gzip.go
	gz     []byte
}

// Segments cuts views of a hub's worlds into segments, one Cutter per
// SegmentKey asked for recently. Safe for concurrent use.
type Segments struct {
	hub *Hub
	cfg SegmentConfig
	log *slog.Logger

	mu      sync.Mutex
	wg      sync.WaitGroup // running cutters
	cutters map[SegmentKey]*Cutter
	closed  bool
}

// NewSegments returns the cutting of hub's views by cfg; log (nil: none)
// tells why a cutter stopped.
func NewSegments(hub *Hub, cfg SegmentConfig, log *slog.Logger) (*Segments, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Segments{hub: hub, cfg: cfg, log: log, cutters: make(map[SegmentKey]*Cutter)}, nil
}

// Config returns the configuration segments are cut with.
func (s *Segments) Config() SegmentConfig { return s.cfg }

// Cutter returns the running cutter of key, starting it (and joining the
// hub) when none runs, and marks it asked now. version names the world's
// rules it cuts under (any comparable value; nil where they never
// change): a cutter of another version stops, and a new one starts.
// check, when set, is asked before each frame and each segment: an error
// stops the cutter (a rules change it notices first).
func (s *Segments) Cutter(key SegmentKey, version any, check func() error) (*Cutter, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	if c := s.cutters[key]; c != nil {
		c.mu.Lock()
		running := c.err == nil && c.version == version
		if running {
			c.asked = time.Now()
		}
		c.mu.Unlock()
		if running {
			return c, nil
		}
		// Cut under other rules: what it keeps may show what the world's
		// rules hide now. It goes (it removes itself only while it is
		// still the key's), and so do its segments.
		c.stop()
		delete(s.cutters, key)
	}
	if len(s.cutters) >= s.cfg.Max {
		return nil, fmt.Errorf("%w: %d already", ErrSegmentsFull, len(s.cutters))
	}
	wt, err := s.hub.Join(key.World, key.Viewer)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := newCutter(s.cfg)
	c.owner, c.key, c.wt, c.version, c.check, c.stop, c.asked = s, key, wt, version, check, cancel, time.Now()
	s.cutters[key] = c
	s.wg.Add(1)
	go c.run(ctx)
	return c, nil
}

// Len returns how many views are being cut.
func (s *Segments) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.cutters)
}

// Close stops every cutter and waits for them; no cutter starts after.
func (s *Segments) Close() {
	s.mu.Lock()
	s.closed = true
	cs := slices.Collect(maps.Values(s.cutters))
	clear(s.cutters)
	s.mu.Unlock()
	for _, c := range cs {
		c.stop()
	}
	s.wg.Wait() // those replaced before were stopped then
}

// Cutter follows one hub watch and cuts its frames into segments: each
// starts with a keyframe of the state the frames so far build (as a
// WebSocket watcher would have it) and the latest frame of each
// aggregated view, then the frames that came during it. It stops when
// nobody asked for it for Idle, when its watch ends, or when check fails.
type Cutter struct {
	owner   *Segments
	cfg     SegmentConfig
	key     SegmentKey
	wt      *Watch
	version any
	check   func() error
	stop    context.CancelFunc

	// the loop's only
	k     *wire.Keyframe    // the state the frames so far build
	views map[string][]byte // each aggregated view's latest frame

	mu       sync.Mutex
	asked    time.Time
	cur      int64 // the segment being cut; -1 before the first keyframe
	lines    [][]byte
	first    uint64
	finished []*Segment // ascending, at most Keep
	err      error      // why it stopped, once it has
}

// newCutter returns a cutter by cfg that has cut nothing.
func newCutter(cfg SegmentConfig) *Cutter {
	return &Cutter{cfg: cfg, views: make(map[string][]byte), cur: -1}
}

// Number returns the number of the segment that covers t.
func (c *Cutter) Number(t time.Time) int64 { return t.UnixNano() / c.cfg.Duration.Nanoseconds() }

// Start returns when segment n starts.
func (c *Cutter) Start(n int64) time.Time { return time.Unix(0, n*c.cfg.Duration.Nanoseconds()) }

// run cuts the watch's frames into segments until ctx ends, the watch
// ends or nobody asked for a while.
func (c *Cutter) run(ctx context.Context) {
	s := c.owner
	defer s.wg.Done()
	err := c.loop(ctx)
	c.wt.Close()
	switch {
	case errors.Is(err, errIdle), errors.Is(err, ErrClosed), errors.Is(err, ErrRulesChanged):
		s.log.Debug("watch segments stopped", "world", c.key.World, "view", c.key.Viewer.Class, "reason", err)
	default:
		s.log.Warn("watch segments stopped", "world", c.key.World, "view", c.key.Viewer.Class, "err", err)
	}
	c.mu.Lock()
	c.err = err
	c.mu.Unlock()
	s.mu.Lock()
	if s.cutters[c.key] == c {
		delete(s.cutters, c.key)
	}
	s.mu.Unlock()
}

func (c *Cutter) loop(ctx context.Context) error {
	t := time.NewTimer(c.cfg.Duration)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ErrClosed
		case f := <-c.wt.Frames():
			if f == nil {
				if err := c.wt.Err(); err != nil {
					return err
				}
				return ErrClosed
			}
			if err := c.checked(); err != nil {
				return err
			}
			if err := c.frame(f, time.Now()); err != nil {
				return err
			}
		case now := <-t.C:
			// A segment opens with the state so far: not under rules
			// that changed since, even when no frame came to say so.
			if err := c.checked(); err != nil {
				return err
			}
			if err := c.roll(now); err != nil {
				return err
			}
			c.mu.Lock()
			idle := now.Sub(c.asked) > c.cfg.Idle
			c.mu.Unlock()
			if idle {
				return errIdle
			}
		}
		t.Reset(time.Until(c.Start(c.Number(time.Now()) + 1)))
	}
}

// checked asks check, when there is one.
func (c *Cutter) checked() error {
	if c.check == nil {
		return nil
	}
	return c.check()
}

// errIdle ends a cutter nobody asked for.
var errIdle = errors.New("watch: segments not asked for")

// frame adds a frame of the watch to the segment being cut.
func (c *Cutter) frame(f *Frame, now time.Time) error {
	if err := c.roll(now); err != nil {
		return err
	}
	switch f.Type {
	case wire.TypeKeyframe:
		var k wire.Keyframe
		if err := json.Unmarshal(f.Data, &k); err != nil {
			return fmt.Errorf("watch: segment keyframe: %w", err)
		}
		c.k = &k
	case wire.TypeWatchDelta:
		if c.k == nil {
			return nil // cannot happen: a watch starts with a keyframe
		}
		var d wire.WatchDelta
		if err := json.Unmarshal(f.Data, &d); err != nil {
			return fmt.Errorf("watch: segment delta: %w", err)
		}
		ApplyDelta(c.k, &d)
	case wire.TypeView:
		var v struct {
			Name string `json:"name"`
		}
		if err := json.Unmarshal(f.Data, &v); err != nil {
			return fmt.Errorf("watch: segment view: %w", err)
		}
		c.views[v.Name] = f.Data
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur < 0 {
		if c.k == nil {
			return nil
		}
		return c.openLocked(c.Number(now))
	}
	c.lines = append(c.lines, f.Data)
	return nil
}

// roll finishes the segments whose time is over at now (an empty one is
// its keyframe and views alone) and opens the one now is in. After a
// stall (or a clock jump) only the last Keep empty ones are made.
func (c *Cutter) roll(now time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.Number(now)
	for c.cur >= 0 && c.cur < n {
		c.finishLocked()
		if err := c.openLocked(max(c.cur+1, n-int64(c.cfg.Keep))); err != nil {
			return err
		}
	}
	return nil
}

// openLocked opens segment n with the state so far and the views' latest
// frames.
func (c *Cutter) openLocked(n int64) error {
	kb, err := json.Marshal(c.k)
	if err != nil {
		return fmt.Errorf("watch: segment keyframe: %w", err)
	}
	c.cur, c.first, c.lines = n, c.k.Seq, [][]byte{kb}
	for _, name := range slices.Sorted(maps.Keys(c.views)) {
		c.lines = append(c.lines, c.views[name])
	}
	return nil
}

// finishLocked makes the segment being cut a finished one.
func (c *Cutter) finishLocked() {
	var data []byte
	for _, l := range c.lines {
		data = append(append(data, l...), '\n')
	}
	sum := sha256.Sum256(data)
	seg := &Segment{N: c.cur, First: c.first, Last: c.k.Seq, Data: data, ETag: `"` + hex.EncodeToString(sum[:12]) + `"`}
	c.finished = append(c.finished, seg)
	if over := len(c.finished) - c.cfg.Keep; over > 0 {
		c.finished = slices.Delete(c.finished, 0, over)
	}
	c.lines = nil
}

// Snapshot returns the finished segments and the number of the one
// being cut (-1 before the first).
func (c *Cutter) Snapshot() ([]*Segment, int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.finished), c.cur
}
