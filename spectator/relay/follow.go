package relay

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gsd-dev/gsd/fanout"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/spectator"
	"github.com/gsd-dev/gsd/wire"
)

// follow reads one world's events, as the relay's view may see them, from
// the upstream's NDJSON event stream, and holds them for the relay's
// pipelines and event streams. After a drop it opens the stream again from
// the seq after the last one it holds: it never holds a seq twice, and
// misses none the upstream sends (a filtered stream leaves out the events
// the view may see nothing of; their seqs are gaps on the node too).
//
// Goroutine: run, owned by the follow; stop ends it and waits.
type follow struct {
	r     *Relay
	world string
	rules fsm.Rules // the views the relay makes of the world (views.go); set at open

	leaves *leafCheck // its events against the audit tree's leaves (leaves.go; nil: not verifying)
	// whole is set once a lean line could not be rebuilt exactly
	// (errLeanUnread): the follow asks for whole lines from then on.
	whole atomic.Bool

	mu      sync.Mutex
	evs     []held           // in seq order
	trimmed uint64           // seq of the last event dropped for MaxEvents (0: none)
	base    *spectator.State // the world after the dropped events: pipelines' seed
	next    uint64           // the seq the upstream stream resumes from
	err     error            // why the follow ended (nil while it runs)
	changed chan struct{}    // closed and replaced at each change

	cancel context.CancelFunc
	done   chan struct{}
}

// held is one event: as the pipelines apply it, and its line as the
// upstream sent it (what the relay's event streams write).
type held struct {
	ev   *fsm.Event
	line []byte
}

// open starts following world: it opens the upstream's stream from seq 1
// and returns once the upstream answered, so that a refusal (an unknown
// world, a view the token may not see) is the viewer's answer. ctx (the
// viewer's) bounds only the wait for that answer: the stream is the
// follow's.
func (r *Relay) open(ctx context.Context, world string) (*follow, error) {
	f := &follow{r: r, world: world, next: 1, changed: make(chan struct{}), done: make(chan struct{}),
		base: spectator.NewState(world).Filtered(), leaves: newLeafCheck(r.checkpoints, world, r.log)}
	fctx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	stop := context.AfterFunc(ctx, cancel)
	body, err := f.connect(fctx)
	if err == nil {
		// After the stream opened: rules that change from now on end it
		// (rules_changed), so these are the ones its events were cut by.
		if f.rules, err = f.fetchRules(fctx); err != nil {
			body.Close()
		}
	}
	if !stop() && err == nil {
		body.Close()
		err = ctx.Err()
	}
	if err != nil {
		cancel()
		return nil, err
	}
	go f.run(fctx, body)
	return f, nil
}

// connect opens the upstream's stream of the world from f.next, waiting
// at most OpenTimeout for its answer; the stream lasts until ctx ends or
// its body is closed.
func (f *follow) connect(ctx context.Context) (io.ReadCloser, error) {
	cfg := f.r.cfg
	q := url.Values{}
	q.Set("from", strconv.FormatUint(f.position(), 10))
	if cfg.View != "" {
		q.Set("view", cfg.View)
	}
	// Gzipped and lean, from a node or a relay alike (one from before
	// them answers plain NDJSON of whole lines, read as such): the bytes
	// per relay are a few percent of the stream's, on every hop of a chain.
	q.Set("compress", "gzip")
	if cfg.UpstreamForm != UpstreamFormWhole && !f.whole.Load() {
		q.Set("form", wire.EventFormLean)
	}
	if cfg.UpstreamLinger > 0 {
		q.Set("linger", cfg.UpstreamLinger.String())
	}
	u := strings.TrimSuffix(cfg.Upstream, "/") + "/v1/worlds/" + url.PathEscape(f.world) + "/events?" + q.Encode()
	ctx, cancel := context.WithCancel(ctx)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("%w: upstream %s: %v", ErrBadRequest, cfg.Upstream, err)
	}
	req.Header.Set("Accept", "application/x-ndjson")
	req.Header.Set("Accept-Encoding", "gzip") // set here, so decoded here: whatever the client's transport does
	if err := f.r.authorize(req); err != nil {
		cancel()
		return nil, err
	}
	timer := time.AfterFunc(cfg.OpenTimeout, cancel)
	resp, err := cfg.HTTPClient.Do(req)
	if !timer.Stop() {
		if err == nil {
			resp.Body.Close()
		}
		err = fmt.Errorf("upstream %s: no answer within %s", cfg.Upstream, cfg.OpenTimeout)
	}
	if err != nil {
		cancel()
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer cancel()
		defer resp.Body.Close()
		return nil, upstreamError(resp)
	}
	// Lean lines are read as asked for, not as the answer's header says
	// (a proxy may drop it): a whole line among them names its world and
	// is read whole (parseLeanLine), so an older node's whole lines read
	// right too.
	lean := cfg.UpstreamForm != UpstreamFormWhole && !f.whole.Load()
	if strings.EqualFold(resp.Header.Get("Content-Encoding"), "gzip") {
		return stream{&gunzipBody{body: resp.Body}, cancel, lean}, nil
	}
	return stream{resp.Body, cancel, lean}, nil
}

// gunzipBody decodes a gzipped stream's body. The gzip reader starts at
// the first Read (its header is read from the body, which may not have
// come yet when the answer's header did).
type gunzipBody struct {
	body io.ReadCloser
	zr   *gzip.Reader
}

func (g *gunzipBody) Read(p []byte) (int, error) {
	if g.zr == nil {
		zr, err := gzip.NewReader(g.body)
		if err != nil {
			return 0, fmt.Errorf("upstream's gzipped stream: %w", err)
		}
		zr.Multistream(false)
		g.zr = zr
	}
	return g.zr.Read(p)
}

func (g *gunzipBody) Close() error { return g.body.Close() }

// authorize shows the upstream the relay's token, if it has one.
func (r *Relay) authorize(req *http.Request) error {
	tok := r.cfg.Token
	if r.cfg.TokenSource != nil {
		var err error
		if tok, err = r.cfg.TokenSource(); err != nil {
			return &UpstreamError{Code: wire.CodeUnauthorized, Message: "the relay's token: " + err.Error()}
		}
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	return nil
}

// upstreamError is the upstream's refusal in resp (not 200), as its error
// body says it.
func upstreamError(resp *http.Response) *UpstreamError {
	ue := &UpstreamError{Status: resp.StatusCode}
	var eb wire.ErrorBody
	if b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10)); json.Unmarshal(b, &eb) == nil {
		ue.Code, ue.Message = eb.Code, eb.Error
	} else {
		ue.Message = strings.TrimSpace(string(b))
	}
	return ue
}

// stream is an upstream stream's body; Close ends its request too.
type stream struct {
	io.ReadCloser
	cancel context.CancelFunc
	lean   bool // its lines are lean (wire.LeanEvent)
}

func (s stream) Close() error {
	s.cancel()
	return s.ReadCloser.Close()
}

// position returns the seq the upstream stream resumes from.
func (f *follow) position() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.next
}

// run reads body, then opens the stream again after each drop (backing
// off while the upstream refuses), until ctx ends, the upstream refuses
// for good (an archive gap, an unknown world, a view no longer allowed)
// or the world's rules change.
func (f *follow) run(ctx context.Context, body io.ReadCloser) {
	defer close(f.done)
	defer func() {
		// A world no longer followed leaves no series behind.
		f.r.metrics.lag.DeleteLabelValues(f.world)
		f.r.metrics.seq.DeleteLabelValues(f.world)
	}()
	defer f.verify(ctx)() // the upstream's audit checkpoints (verify.go)
	wait := f.r.cfg.RetryMin
	for {
		got, err := f.read(ctx, body)
		body.Close()
		if got {
			wait = f.r.cfg.RetryMin
		}
		for {
			if ctx.Err() != nil {
				f.end(ErrClosed)
				return
			}
			var ue *UpstreamError
			if errors.As(err, &ue) && strings.Contains(ue.Message, spectator.ErrRulesChanged.Error()) {
				// The world's rules changed: what the relay holds was cut
				// under the old ones (a field may be hidden now). The
				// follow ends, and its readers with it (watchers get 4409
				// and join again, event streams a rules_changed line);
				// the next viewer reads the world anew from seq 1, cut
				// under the new rules.
				f.end(fmt.Errorf("%w: %w", spectator.ErrRulesChanged, err))
				return
			}
			if errors.Is(err, errLeanUnread) && !f.whole.Swap(true) {
				f.r.log.Warn("upstream lean line not rebuilt exactly (a field this relay does not know?): asking for whole lines",
					"world", f.world, "from", f.position(), "err", err)
			}
			rotates := f.r.cfg.TokenSource != nil && errors.As(err, &ue) && ue.Code == wire.CodeUnauthorized
			if errors.As(err, &ue) && !ue.retryable() && !rotates || errors.Is(err, wire.ErrMalformed) || errors.Is(err, ErrCheckpoint) {
				f.end(err)
				return
			}
			if err != nil {
				f.r.log.Info("upstream stream dropped: resuming", "world", f.world, "from", f.position(), "err", err)
			}
			f.r.metrics.reconnects.Inc()
			if !sleep(ctx, wait/2+rand.N(wait/2+1)) {
				continue // ctx ended: the check above returns
			}
			wait = min(2*wait, f.r.cfg.RetryMax)
			if body, err = f.connect(ctx); err == nil {
				break
			}
		}
	}
}

// read holds the events of one upstream stream until it ends; got says
// whether it held any. A stream's lean lines are held rebuilt whole.
func (f *follow) read(ctx context.Context, body io.Reader) (got bool, err error) {
	s, _ := body.(stream)
	rd := bufio.NewReaderSize(body, 64<<10)
	for {
		line, err := rd.ReadBytes('\n')
		if err != nil {
			if ctx.Err() != nil {
				return got, ctx.Err()
			}
			if errors.Is(err, io.EOF) && len(bytes.TrimSpace(line)) == 0 {
				return got, nil // the upstream ended the stream: resume
			}
			return got, fmt.Errorf("upstream stream: %w", err)
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue // keep-alive
		}
		n := len(line)
		var ev *fsm.Event
		var wev *wire.Event
		if s.lean {
			ev, wev, line, err = parseLeanLine(line, f.world)
		} else {
			ev, wev, err = parseLineWire(line)
		}
		if err != nil {
			return got, err
		}
		if ev == nil {
			continue
		}
		if ev.World != f.world {
			return got, fmt.Errorf("%w: upstream sent an event of world %q on world %q's stream", wire.ErrMalformed, ev.World, f.world)
		}
		if f.leaves != nil && ev.Seq >= f.position() {
			// Before it is held: an event that completes a checkpoint's
			// tree wrongly is never served.
			if err := f.leaves.add(wev); err != nil {
				return got, err
			}
		}
		if f.hold(ev, line, n) {
			got = true
		}
	}
}

// hold appends one event unless the follow holds its seq already (a
// stream opened again from an older position repeats it); n is the bytes
// of its line as received.
func (f *follow) hold(ev *fsm.Event, line []byte, n int) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if ev.Seq < f.next {
		return false
	}
	f.evs = append(f.evs, held{ev: ev, line: line})
	f.next = ev.Seq + 1
	if max := f.r.cfg.MaxEvents; len(f.evs) > max+max/8 {
		// The oldest go, into the seed state of the pipelines that start
		// from now on; an eighth at a time, so that holding an event
		// does not copy the others each time.
		n := len(f.evs) - max
		for _, h := range f.evs[:n] {
			if err := f.base.Apply(h.ev); err != nil {
				f.r.log.Error("relay state", "world", f.world, "err", err) // held in seq order: never expected
			}
		}
		f.trimmed = f.evs[n-1].ev.Seq
		f.evs = append([]held(nil), f.evs[n:]...)
	}
	f.r.metrics.lag.WithLabelValues(f.world).Set(time.Since(time.Unix(0, ev.Time)).Seconds())
	f.r.metrics.seq.WithLabelValues(f.world).Set(float64(ev.Seq))
	f.r.metrics.received.Add(float64(n))
	f.notifyLocked()
	return true
}

func (f *follow) notifyLocked() {
	close(f.changed)
	f.changed = make(chan struct{})
}

// end records why the follow ended; readers get it after what it holds.
func (f *follow) end(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err == nil {
		f.err = err
		f.notifyLocked()
	}
	switch {
	case errors.Is(err, ErrClosed):
	case errors.Is(err, spectator.ErrRulesChanged):
		f.r.log.Info("the world's rules changed: following it anew on the next viewer", "world", f.world)
	case errors.Is(err, ErrCheckpoint):
		f.r.log.Warn("upstream sent an audit checkpoint or events the relay refuses: dropping it", "world", f.world, "err", err)
	default:
		f.r.log.Warn("upstream refused the stream: following stopped", "world", f.world, "err", err)
	}
}

// failed reports whether the follow ended.
func (f *follow) failed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err != nil
}

// stop ends the follow and waits for it.
func (f *follow) stop() {
	f.cancel()
	<-f.done
}

// subscribe returns a reader of the held events from seq from on
// (inclusive; 0: the ones after those held now).
func (f *follow) subscribe(from uint64) *sub {
	f.mu.Lock()
	defer f.mu.Unlock()
	if from == 0 {
		from = f.next
	}
	return &sub{f: f, from: from}
}

// sub reads a follow's events in seq order (a fanout.Subscription).
type sub struct {
	f    *follow
	from uint64 // the seq it wants next
}

var _ fanout.Subscription = (*sub)(nil)

// maxBatch bounds the events one Next returns.
const maxBatch = 256

// Next returns the next held events, waiting for some; after them the
// follow's end (its error), or ErrGap when the ones it wants were dropped.
func (s *sub) Next(ctx context.Context) ([]*fsm.Event, error) {
	hs, err := s.nextHeld(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]*fsm.Event, len(hs))
	for i, h := range hs {
		out[i] = h.ev
	}
	return out, nil
}

// nextHeld is Next with the events' lines.
func (s *sub) nextHeld(ctx context.Context) ([]held, error) {
	for {
		f := s.f
		f.mu.Lock()
		if err := f.gapLocked(s.from); err != nil {
			f.mu.Unlock()
			return nil, err
		}
		i := sort.Search(len(f.evs), func(i int) bool { return f.evs[i].ev.Seq >= s.from })
		if i < len(f.evs) {
			out := f.evs[i:min(len(f.evs), i+maxBatch)]
			s.from = out[len(out)-1].ev.Seq + 1
			f.mu.Unlock()
			return out, nil
		}
		if f.err != nil {
			err := f.err
			f.mu.Unlock()
			return nil, err
		}
		ch := f.changed
		f.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// sleep waits d (false if ctx ends first).
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// seed returns a copy of the world's state after the events the follow
// dropped (nil: it dropped none).
func (f *follow) seed() *spectator.State {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.trimmed == 0 {
		return nil
	}
	return f.base.Clone()
}

// check returns ErrGap when the events from seq from on were dropped.
func (f *follow) check(from uint64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.gapLocked(from)
}

func (f *follow) gapLocked(from uint64) error {
	if f.trimmed != 0 && from <= f.trimmed {
		return fmt.Errorf("%w: world %s from seq %d (the relay holds from after %d)", ErrGap, f.world, from, f.trimmed)
	}
	return nil
}
