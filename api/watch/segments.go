package watch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/spectator"
	"github.com/gsd-dev/gsd/wire"
)

// Defaults of a SegmentConfig.
const (
	DefaultSegmentDuration = 2 * time.Second
	DefaultSegmentKeep     = 30
	DefaultSegmentIdle     = 30 * time.Second
	DefaultSegmenters      = 256
)

// SegmentConfig configures the segmented HTTP variant of the watch route.
type SegmentConfig struct {
	// Duration is how much time one segment covers; segment n covers the
	// node's clock from n×Duration to (n+1)×Duration since the Unix epoch,
	// so a number names the same stretch of time whenever it is asked.
	Duration time.Duration
	// Keep is how many finished segments a (world, view, delay) keeps.
	Keep int
	// Idle is how long a (world, view, delay) goes on being cut into
	// segments after its last request.
	Idle time.Duration
	// Max bounds how many (world, view, delay) a node cuts at once (each
	// holds a hub viewer and Keep segments); a request for one more is
	// refused 503 until one goes idle.
	Max int
}

// DefaultSegmentConfig returns a SegmentConfig with the defaults.
func DefaultSegmentConfig() SegmentConfig {
	return SegmentConfig{Duration: DefaultSegmentDuration, Keep: DefaultSegmentKeep, Idle: DefaultSegmentIdle, Max: DefaultSegmenters}
}

// Validate reports a SegmentConfig the route cannot run with.
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

// segKey is what a segmenter cuts: a world as one viewer sees it.
type segKey struct {
	world string
	v     spectator.Viewer
}

// segment is a finished segment: its lines, encoded once, immutable.
type segment struct {
	n           int64
	first, last uint64
	data        []byte
	etag        string
}

// segmenter follows one hub watch and cuts its frames into segments: each
// starts with a keyframe of the state the frames so far build (as a
// WebSocket watcher would have it) and the latest frame of each
// aggregated view, then the frames that came during it. It stops when
// nobody asked for it for Idle, when its watch ends, or when the world's
// rules change.
type segmenter struct {
	svc   *Service
	cfg   SegmentConfig
	key   segKey
	wt    *spectator.Watch
	rules edge.RulesRef
	stop  context.CancelFunc

	// the loop's only
	k     *wire.Keyframe    // the state the frames so far build
	views map[string][]byte // each aggregated view's latest frame

	mu       sync.Mutex
	asked    time.Time
	cur      int64 // the segment being cut; -1 before the first keyframe
	lines    [][]byte
	first    uint64
	finished []*segment // ascending, at most Keep
	err      error      // why it stopped, once it has
}

// segmenterFor returns the running segmenter of key, starting it (and
// joining the hub) when none runs, and marks it asked now.
func (s *Service) segmenterFor(key segKey, rules edge.RulesRef) (*segmenter, error) {
	s.segMu.Lock()
	defer s.segMu.Unlock()
	if s.segClosed {
		return nil, spectator.ErrClosed
	}
	if sg := s.segs[key]; sg != nil {
		sg.mu.Lock()
		running := sg.err == nil && sg.rules == rules
		if running {
			sg.asked = time.Now()
		}
		sg.mu.Unlock()
		if running {
			return sg, nil
		}
		// Cut under other rules: what it keeps may show what the world's
		// rules hide now. It goes (it removes itself only while it is
		// still the key's), and so do its segments.
		sg.stop()
		delete(s.segs, key)
	}
	if len(s.segs) >= s.segCfg.Max {
		return nil, fmt.Errorf("%w: this node cuts %d views into segments already", edge.ErrUnavailable, len(s.segs))
	}
	wt, err := s.hub.Join(key.world, key.v)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	sg := &segmenter{svc: s, cfg: s.segCfg, key: key, wt: wt, rules: rules, stop: cancel,
		views: make(map[string][]byte), asked: time.Now(), cur: -1}
	s.segs[key] = sg
	s.segWG.Add(1)
	go sg.run(ctx)
	return sg, nil
}

// closeSegmenters stops every segmenter and waits for them.
func (s *Service) closeSegmenters() {
	s.segMu.Lock()
	s.segClosed = true
	segs := slices.Collect(maps.Values(s.segs))
	clear(s.segs)
	s.segMu.Unlock()
	for _, sg := range segs {
		sg.stop()
	}
	s.segWG.Wait() // those replaced before were stopped then
}

// number returns the number of the segment that covers t.
func (sg *segmenter) number(t time.Time) int64 { return t.UnixNano() / sg.cfg.Duration.Nanoseconds() }

// start returns when segment n starts.
func (sg *segmenter) start(n int64) time.Time { return time.Unix(0, n*sg.cfg.Duration.Nanoseconds()) }

// run cuts the watch's frames into segments until ctx ends, the watch
// ends or nobody asked for a while.
func (sg *segmenter) run(ctx context.Context) {
	defer sg.svc.segWG.Done()
	err := sg.loop(ctx)
	sg.wt.Close()
	switch {
	case errors.Is(err, errIdle), errors.Is(err, spectator.ErrClosed), errors.Is(err, spectator.ErrRulesChanged):
		sg.svc.Log().Debug("watch segments stopped", "world", sg.key.world, "view", sg.key.v.Class, "reason", err)
	default:
		sg.svc.Log().Warn("watch segments stopped", "world", sg.key.world, "view", sg.key.v.Class, "err", err)
	}
	sg.mu.Lock()
	sg.err = err
	sg.mu.Unlock()
	s := sg.svc
	s.segMu.Lock()
	if s.segs[sg.key] == sg {
		delete(s.segs, sg.key)
	}
	s.segMu.Unlock()
}

func (sg *segmenter) loop(ctx context.Context) error {
	t := time.NewTimer(sg.cfg.Duration)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return spectator.ErrClosed
		case f := <-sg.wt.Frames():
			if f == nil {
				if err := sg.wt.Err(); err != nil {
					return err
				}
				return spectator.ErrClosed
			}
			if err := sg.checkRules(); err != nil {
				return err
			}
			if err := sg.frame(f, time.Now()); err != nil {
				return err
			}
		case now := <-t.C:
			// A segment opens with the state so far: not under rules
			// that changed since, even when no frame came to say so.
			if err := sg.checkRules(); err != nil {
				return err
			}
			if err := sg.roll(now); err != nil {
				return err
			}
			sg.mu.Lock()
			idle := now.Sub(sg.asked) > sg.cfg.Idle
			sg.mu.Unlock()
			if idle {
				return errIdle
			}
		}
		t.Reset(time.Until(sg.start(sg.number(time.Now()) + 1)))
	}
}

// checkRules ends the world's pipelines and the segmenter when the
// world's rules changed since it started (ErrRulesChanged).
func (sg *segmenter) checkRules() error {
	world := sg.key.world
	if now, ok := sg.svc.vis.RulesVersion(world, sg.rules); !ok || now != sg.rules {
		sg.svc.hub.RulesChanged(world)
		return spectator.ErrRulesChanged
	}
	return nil
}

// errIdle ends a segmenter nobody asked for.
var errIdle = errors.New("watch: segments not asked for")

// frame adds a frame of the watch to the segment being cut.
func (sg *segmenter) frame(f *spectator.Frame, now time.Time) error {
	if err := sg.roll(now); err != nil {
		return err
	}
	switch f.Type {
	case wire.TypeKeyframe:
		var k wire.Keyframe
		if err := json.Unmarshal(f.Data, &k); err != nil {
			return fmt.Errorf("watch: segment keyframe: %w", err)
		}
		sg.k = &k
	case wire.TypeWatchDelta:
		if sg.k == nil {
			return nil // cannot happen: a watch starts with a keyframe
		}
		var d wire.WatchDelta
		if err := json.Unmarshal(f.Data, &d); err != nil {
			return fmt.Errorf("watch: segment delta: %w", err)
		}
		spectator.ApplyDelta(sg.k, &d)
	case wire.TypeView:
		var v struct {
			Name string `json:"name"`
		}
		if err := json.Unmarshal(f.Data, &v); err != nil {
			return fmt.Errorf("watch: segment view: %w", err)
		}
		sg.views[v.Name] = f.Data
	}
	sg.mu.Lock()
	defer sg.mu.Unlock()
	if sg.cur < 0 {
		if sg.k == nil {
			return nil
		}
		return sg.openLocked(sg.number(now))
	}
	sg.lines = append(sg.lines, f.Data)
	return nil
}

// roll finishes the segments whose time is over at now (an empty one is
// its keyframe and views alone) and opens the one now is in. After a
// stall (or a clock jump) only the last Keep empty ones are made.
func (sg *segmenter) roll(now time.Time) error {
	sg.mu.Lock()
	defer sg.mu.Unlock()
	n := sg.number(now)
	for sg.cur >= 0 && sg.cur < n {
		sg.finishLocked()
		if err := sg.openLocked(max(sg.cur+1, n-int64(sg.cfg.Keep))); err != nil {
			return err
		}
	}
	return nil
}

// openLocked opens segment n with the state so far and the views' latest
// frames.
func (sg *segmenter) openLocked(n int64) error {
	kb, err := json.Marshal(sg.k)
	if err != nil {
		return fmt.Errorf("watch: segment keyframe: %w", err)
	}
	sg.cur, sg.first, sg.lines = n, sg.k.Seq, [][]byte{kb}
	for _, name := range slices.Sorted(maps.Keys(sg.views)) {
		sg.lines = append(sg.lines, sg.views[name])
	}
	return nil
}

// finishLocked makes the segment being cut a finished one.
func (sg *segmenter) finishLocked() {
	var data []byte
	for _, l := range sg.lines {
		data = append(append(data, l...), '\n')
	}
	sum := sha256.Sum256(data)
	seg := &segment{n: sg.cur, first: sg.first, last: sg.k.Seq, data: data, etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
	sg.finished = append(sg.finished, seg)
	if over := len(sg.finished) - sg.cfg.Keep; over > 0 {
		sg.finished = slices.Delete(sg.finished, 0, over)
	}
	sg.lines = nil
}

// snapshot returns the finished segments and the number of the one
// being cut (-1 before the first).
func (sg *segmenter) snapshot() ([]*segment, int64) {
	sg.mu.Lock()
	defer sg.mu.Unlock()
	return slices.Clone(sg.finished), sg.cur
}
