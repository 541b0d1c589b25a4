package feed_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/sink/feed"
	"github.com/gsd-dev/gsd/sink/internal/sinktest"
	"github.com/stretchr/testify/require"
)

func testConfig() feed.FollowConfig {
	return feed.FollowConfig{
		BatchSize:     4,
		Linger:        time.Millisecond,
		CheckInterval: 2 * time.Millisecond,
		RetryMin:      time.Millisecond,
		RetryMax:      4 * time.Millisecond,
		Logger:        slog.New(slog.DiscardHandler),
	}
}

// target is a feed.Target that keeps what it was delivered and the
// position it stored, and fails or blocks when a test says so.
type target struct {
	mu        sync.Mutex
	world     string
	stored    []feed.Position // newest first
	delivered []delivery      // every successful Deliver's events
	resumed   []feed.Position
	fails     []error // what each session failed with
	ends      int

	// failNext, when positive, fails that many Deliver calls.
	failNext int
	// block, when set, makes Deliver wait for ctx's end.
	block   bool
	blocked chan struct{} // closed once a Deliver blocks
	// verify, when set, is Verify's answer.
	verify   error
	verified int

	// hold, when set, keeps delivered events until Flush, due flushAfter
	// after the first one held.
	hold       bool
	flushAfter time.Duration
	held       *feed.Position
	heldAt     time.Time
	flushes    int

	posErr, resumeErr, endErr error // what those calls answer
}

func (t *target) FlushAt() (time.Time, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.held == nil {
		return time.Time{}, false
	}
	return t.heldAt.Add(t.flushAfter), true
}

func (t *target) Flush(context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.store(*t.held)
	t.held = nil
	t.flushes++
	return nil
}

type delivery struct {
	inc int64
	seq uint64
}

var errDeliver = errors.New("test: deliver failed")

func (t *target) Positions(context.Context) ([]feed.Position, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.posErr != nil {
		return nil, t.posErr
	}
	return append([]feed.Position(nil), t.stored...), nil
}

func (t *target) Resume(_ context.Context, pos feed.Position) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.resumed = append(t.resumed, pos)
	return t.resumeErr
}

func (t *target) Deliver(ctx context.Context, pos feed.Position, evs []*fsm.Event) (feed.Position, error) {
	t.mu.Lock()
	if t.block {
		close(t.blocked)
		t.block = false
		t.mu.Unlock()
		<-ctx.Done()
		return pos, ctx.Err()
	}
	defer t.mu.Unlock()
	if t.failNext > 0 {
		t.failNext--
		return pos, errDeliver
	}
	for _, ev := range evs {
		t.delivered = append(t.delivered, delivery{pos.Incarnation, ev.Seq})
	}
	pos.Seq = evs[len(evs)-1].Seq
	if t.hold {
		if t.held == nil {
			t.heldAt = time.Now()
		}
		t.held = &pos
		return pos, nil
	}
	t.store(pos)
	return pos, nil
}

// store keeps pos as its incarnation's position, newest first.
func (t *target) store(pos feed.Position) {
	out := []feed.Position{pos}
	for _, p := range t.stored {
		if p.Incarnation != pos.Incarnation {
			out = append(out, p)
		}
	}
	t.stored = out
}

func (t *target) End(error) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.ends++
	return t.endErr
}

func (t *target) position() feed.Position {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.stored) == 0 {
		return feed.Position{}
	}
	return t.stored[0]
}

func (t *target) deliveries() []delivery {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]delivery(nil), t.delivered...)
}

func (t *target) failures() []error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]error(nil), t.fails...)
}

// Verify answers t.verify and counts the calls.
func (t *target) Verify(_ context.Context, p feed.Position, ev *fsm.Event) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if ev.Seq != p.Seq {
		return errors.New("test: verified against another seq's event")
	}
	t.verified++
	return t.verify
}

// follower is a running Follower over targets the test prepares per
// world (a new empty one for any other world).
type follower struct {
	mu      sync.Mutex
	targets map[string]*target
	started map[string]int
	stopped map[string]int
	stop    func()
}

func startFollower(t *testing.T, cfg feed.FollowConfig, src feed.Source, targets map[string]*target) *follower {
	t.Helper()
	fl := &follower{targets: targets, started: map[string]int{}, stopped: map[string]int{}}
	if fl.targets == nil {
		fl.targets = map[string]*target{}
	}
	f, err := feed.NewFollower(cfg, src, feed.Hooks[*target]{
		Start: func(world string) *target {
			fl.mu.Lock()
			defer fl.mu.Unlock()
			fl.started[world]++
			tg := fl.targets[world]
			if tg == nil {
				tg = &target{world: world}
				fl.targets[world] = tg
			}
			return tg
		},
		Fail: func(_ string, tg *target, err error, _ time.Duration) {
			tg.mu.Lock()
			tg.fails = append(tg.fails, err)
			tg.mu.Unlock()
		},
		Stop: func(world string, _ *target) {
			fl.mu.Lock()
			fl.stopped[world]++
			fl.mu.Unlock()
		},
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		require.NoError(t, f.Run(ctx))
	}()
	var once sync.Once
	fl.stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(fl.stop)
	return fl
}

func (fl *follower) target(world string) *target {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	return fl.targets[world]
}

func (fl *follower) count(m map[string]int, world string) int {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	return m[world]
}

func at(tg *target, inc int64, seq uint64) func() bool {
	return func() bool { return tg.position() == feed.Position{Incarnation: inc, Seq: seq} }
}

// requireOnce checks that tg was delivered seqs 1..n of incarnation inc,
// each once, in order, and nothing else.
func requireOnce(t *testing.T, tg *target, inc int64, n int) {
	t.Helper()
	var want []delivery
	for i := 1; i <= n; i++ {
		want = append(want, delivery{inc, uint64(i)})
	}
	require.Equal(t, want, tg.deliveries())
}

// losing is a Source whose world stops being led after a number of
// Leads calls: leadership lost between two checks.
type losing struct {
	*sinktest.Source
	mu    sync.Mutex
	calls int
	after int
}

func (l *losing) Leads(world string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls++
	return l.calls <= l.after && l.Source.Leads(world)
}
