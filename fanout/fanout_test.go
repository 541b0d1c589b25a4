package fanout

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gsd-dev/gsd/fsm"
)

// feed is an in-memory world feed: event seq s is evs[s-1], whatever the
// world.
type feed struct {
	mu      sync.Mutex
	evs     []*fsm.Event
	changed chan struct{} // closed and replaced on each change
	err     error         // set: every Next fails with it
	subErr  error         // set: Subscribe fails with it
	maxRead int           // events one Next returns at most
}

func newFeed() *feed { return &feed{changed: make(chan struct{}), maxRead: 256} }

// publish appends n events and returns the seq of the last.
func (f *feed) publish(n int) uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	for range n {
		f.evs = append(f.evs, &fsm.Event{Seq: uint64(len(f.evs)) + 1})
	}
	close(f.changed)
	f.changed = make(chan struct{})
	return uint64(len(f.evs))
}

// fail makes every read fail with err from now on.
func (f *feed) fail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
	close(f.changed)
	f.changed = make(chan struct{})
}

func (f *feed) Subscribe(world string, from uint64) (Subscription, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.subErr != nil {
		return nil, f.subErr
	}
	return &feedSub{f: f, next: from}, nil
}

type feedSub struct {
	f    *feed
	next uint64
}

func (s *feedSub) Next(ctx context.Context) ([]*fsm.Event, error) {
	for {
		s.f.mu.Lock()
		if err := s.f.err; err != nil {
			s.f.mu.Unlock()
			return nil, err
		}
		if s.next <= uint64(len(s.f.evs)) {
			out := s.f.evs[s.next-1 : min(uint64(len(s.f.evs)), s.next-1+uint64(s.f.maxRead))]
			s.f.mu.Unlock()
			s.next += uint64(len(out))
			return out, nil
		}
		ch := s.f.changed
		s.f.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// seqLines encodes each event as its seq and a newline.
func seqLines(data []byte, offs []int, evs []*fsm.Event) ([]byte, []int, error) {
	for _, ev := range evs {
		offs = append(offs, len(data))
		data = fmt.Appendf(data, "%d\n", ev.Seq)
	}
	return data, offs, nil
}

// newHub returns a hub over f, closed when the test ends; opts adjust its
// config.
func newHub(t *testing.T, f *feed, opts ...func(*Config)) *Hub {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Subscribe = f.Subscribe
	cfg.Encode = seqLines
	for _, o := range opts {
		o(&cfg)
	}
	h, err := New(cfg)
	require.NoError(t, err)
	t.Cleanup(h.Close)
	return h
}

// recv returns m's next chunk, or nil when its channel is closed.
func recv(t *testing.T, m *Member) *Chunk {
	t.Helper()
	select {
	case c := <-m.Chunks():
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("no chunk and no close")
		return nil
	}
}

// requireClosed checks that m's channel holds no more chunks and is closed.
func requireClosed(t *testing.T, m *Member) {
	t.Helper()
	require.Nil(t, recv(t, m), "member's channel closed")
}

// requireMembers waits until world has fans fans feeding members members.
func requireMembers(t *testing.T, h *Hub, world string, fans, members int) {
	t.Helper()
	require.Eventually(t, func() bool {
		f, m := h.Members(world)
		return f == fans && m == members
	}, 10*time.Second, time.Millisecond)
}

func TestConfigValidateNamesWhatIsMissing(t *testing.T) {
	t.Parallel()
	ok := DefaultConfig()
	ok.Subscribe = newFeed().Subscribe
	ok.Encode = seqLines
	require.NoError(t, ok.Validate())
	for name, tc := range map[string]struct {
		edit func(*Config)
		want string
	}{
		"subscribe": {func(c *Config) { c.Subscribe = nil }, "Subscribe"},
		"encode":    {func(c *Config) { c.Encode = nil }, "Encode"},
		"queue":     {func(c *Config) { c.Queue = 0 }, "Queue"},
		"reads":     {func(c *Config) { c.Reads = -1 }, "Reads"},
	} {
		c := ok
		tc.edit(&c)
		_, err := New(c)
		require.ErrorContains(t, err, tc.want, name)
	}
}

// Members of one world and linger share one fan and receive the very same
// chunks; another linger is another fan.
func TestMembersOfOneKeyShareAFanAndItsChunks(t *testing.T) {
	t.Parallel()
	f := newFeed()
	h := newHub(t, f)
	key := Key{World: "arena"}
	a, pos := h.Attach(key, 1)
	require.EqualValues(t, 1, pos)
	b, pos := h.Attach(key, 1)
	require.EqualValues(t, 1, pos)
	c, _ := h.Attach(Key{World: "arena", Linger: time.Millisecond}, 1)
	other, _ := h.Attach(Key{World: "lobby"}, 1)
	fans, members := h.Members("arena")
	require.Equal(t, 2, fans)
	require.Equal(t, 3, members)

	f.publish(2)
	ca, cb, cc := recv(t, a), recv(t, b), recv(t, c)
	require.Same(t, ca, cb, "one chunk for the members of one fan")
	require.NotSame(t, ca, cc)
	for _, ch := range []*Chunk{ca, cc} {
		require.EqualValues(t, 1, ch.First())
		require.EqualValues(t, 3, ch.End())
		require.Equal(t, "1\n2\n", string(ch.From(1)))
		require.Equal(t, "2\n", string(ch.From(2)))
	}
	// The lobby's fan reads the same feed here (the fake ignores worlds);
	// what matters is that it is its own.
	require.NotSame(t, ca, recv(t, other))
	for _, m := range []*Member{a, b, c, other} {
		h.Detach(m)
	}
	requireMembers(t, h, "arena", 0, 0)
}

// A fan stops when its last member goes; a new member starts a new one,
// which hands out the events from the new member's position.
func TestAFanStopsWithItsLastMember(t *testing.T) {
	t.Parallel()
	f := newFeed()
	h := newHub(t, f)
	key := Key{World: "arena", Linger: 10 * time.Millisecond}
	a, _ := h.Attach(key, 1)
	b, _ := h.Attach(key, 1)
	h.Detach(a)
	requireClosed(t, a)
	requireMembers(t, h, "arena", 1, 1)
	h.Detach(b)
	requireClosed(t, b)
	requireMembers(t, h, "arena", 0, 0)
	h.Detach(b) // twice: no effect

	last := f.publish(3)
	c, pos := h.Attach(key, last)
	require.Equal(t, last, pos)
	ch := recv(t, c)
	require.Equal(t, last, ch.First())
	require.Equal(t, fmt.Sprintf("%d\n", last), string(ch.From(last)))
	h.Detach(c)
}

// A member attaching to a running fan gets the fan's position: the chunks
// from there on, not the ones handed out before.
func TestAttachReturnsTheFansPosition(t *testing.T) {
	t.Parallel()
	f := newFeed()
	h := newHub(t, f)
	key := Key{World: "arena"}
	a, _ := h.Attach(key, 1)
	f.publish(2)
	require.EqualValues(t, 3, recv(t, a).End())
	b, pos := h.Attach(key, 1)
	require.EqualValues(t, 3, pos, "the member must read 1 and 2 itself")
	last := f.publish(1)
	ca, cb := recv(t, a), recv(t, b)
	require.Same(t, ca, cb)
	require.Equal(t, last, cb.First())
	h.Detach(a)
	h.Detach(b)
}

// A member whose queue is full is detached: its channel holds the chunks
// queued before and is then closed, and the others go on receiving.
func TestASlowMemberIsDetachedAndTheOthersGoOn(t *testing.T) {
	t.Parallel()
	f := newFeed()
	var detaches atomic.Int64
	h := newHub(t, f, func(c *Config) {
		c.Queue = 2
		c.OnDetach = func() { detaches.Add(1) }
	})
	key := Key{World: "arena"}
	slow, _ := h.Attach(key, 1)
	fast, _ := h.Attach(key, 1)
	for i := 1; i <= 3; i++ {
		seq := f.publish(1)
		require.Equal(t, seq, recv(t, fast).First())
	}
	// The fan may hand the fast member its chunk before it lets the slow
	// one go: wait for the hand-out to end.
	requireMembers(t, h, "arena", 1, 1)
	require.EqualValues(t, 1, detaches.Load())
	require.EqualValues(t, 1, recv(t, slow).First())
	require.EqualValues(t, 2, recv(t, slow).First())
	requireClosed(t, slow)
	h.Detach(slow) // after the fan let it go: no effect on the fan
	_, members := h.Members("arena")
	require.Equal(t, 1, members, "the fast member stays")

	seq := f.publish(1)
	require.Equal(t, seq, recv(t, fast).First())
	h.Detach(fast)
}

// After its linger a fan joins the reads waiting into one chunk, up to
// Reads reads.
func TestAChunkJoinsTheReadsWaitingUpToReads(t *testing.T) {
	t.Parallel()
	f := newFeed()
	f.maxRead = 1
	f.publish(5)
	h := newHub(t, f, func(c *Config) { c.Reads = 3 })
	m, _ := h.Attach(Key{World: "arena"}, 1)
	c := recv(t, m)
	require.EqualValues(t, 1, c.First())
	require.EqualValues(t, 4, c.End())
	require.Equal(t, "1\n2\n3\n", string(c.From(1)))
	require.Equal(t, "3\n", string(c.From(3)))
	c = recv(t, m)
	require.EqualValues(t, 4, c.First())
	require.EqualValues(t, 6, c.End())
	h.Detach(m)
}

// A feed that fails, or cannot be opened, ends the fan: its members'
// channels close (they read on from their own subscriptions, which report
// the failure).
func TestAFeedFailureEndsTheFan(t *testing.T) {
	t.Parallel()
	t.Run("read", func(t *testing.T) {
		t.Parallel()
		f := newFeed()
		h := newHub(t, f)
		m, _ := h.Attach(Key{World: "arena"}, 1)
		f.publish(1)
		require.NotNil(t, recv(t, m))
		f.fail(errors.New("boom"))
		requireClosed(t, m)
		requireMembers(t, h, "arena", 0, 0)
		h.Detach(m)
	})
	t.Run("subscribe", func(t *testing.T) {
		t.Parallel()
		f := newFeed()
		f.subErr = errors.New("no such world")
		h := newHub(t, f)
		m, pos := h.Attach(Key{World: "arena"}, 7)
		require.EqualValues(t, 7, pos)
		requireClosed(t, m)
		h.Detach(m)
	})
	t.Run("encode", func(t *testing.T) {
		t.Parallel()
		f := newFeed()
		h := newHub(t, f, func(c *Config) {
			c.Encode = func([]byte, []int, []*fsm.Event) ([]byte, []int, error) {
				return nil, nil, errors.New("unencodable")
			}
		})
		m, _ := h.Attach(Key{World: "arena"}, 1)
		f.publish(1)
		requireClosed(t, m)
		h.Detach(m)
	})
}

// Close ends a fan waiting out its linger and closes its members'
// channels; a member attaching after Close gets a closed channel.
func TestCloseEndsALingeringFan(t *testing.T) {
	t.Parallel()
	f := newFeed()
	h := newHub(t, f)
	m, _ := h.Attach(Key{World: "arena", Linger: time.Hour}, 1)
	f.publish(1)
	require.NotNil(t, recv(t, m)) // the fan now lingers an hour
	h.Close()
	requireClosed(t, m)
	fans, _ := h.Members("arena")
	require.Zero(t, fans)
	h.Detach(m)

	late, pos := h.Attach(Key{World: "arena"}, 9)
	require.EqualValues(t, 9, pos)
	requireClosed(t, late)
	h.Detach(late)
	fans, _ = h.Members("arena")
	require.Zero(t, fans)
}

func TestNewChunk(t *testing.T) {
	t.Parallel()
	c, err := NewChunk(seqLines, 4, []*fsm.Event{{Seq: 4}, {Seq: 5}})
	require.NoError(t, err)
	require.EqualValues(t, 4, c.First())
	require.EqualValues(t, 6, c.End())
	require.Equal(t, "5\n", string(c.From(5)))
	_, _, ok := c.RulesUpdate(4)
	require.False(t, ok)
	_, err = NewChunk(func([]byte, []int, []*fsm.Event) ([]byte, []int, error) {
		return nil, nil, errors.New("unencodable")
	}, 1, []*fsm.Event{{Seq: 1}})
	require.ErrorContains(t, err, "unencodable")
}

// Members attaching, reading and detaching while events are published:
// within one attachment a member's chunks start at the position Attach
// returned and follow on without gaps or overlaps.
func TestMembersComingAndGoingSeeContiguousChunks(t *testing.T) {
	t.Parallel()
	f := newFeed()
	h := newHub(t, f, func(c *Config) { c.Queue = 4 })
	key := Key{World: "arena"}
	const total = 300
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Go(func() {
			for round := 0; ; round++ {
				m, pos := h.Attach(key, 1)
				next := pos
				for range w + 1 { // a few chunks per attachment, fewer for some
					c := <-m.Chunks()
					if c == nil {
						break // detached: attach again
					}
					if c.First() != next {
						errs <- fmt.Errorf("member %d round %d: chunk from %d, want %d", w, round, c.First(), next)
						h.Detach(m)
						return
					}
					next = c.End()
				}
				h.Detach(m)
				if next > total {
					return
				}
			}
		})
	}
	// Publish until every member has seen the last event; a member may
	// find the fan stopped (all gone) and start a new one at seq 1, which
	// reads the whole feed again.
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for {
		select {
		case <-done:
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			return
		default:
			// One event at a time, each handed out before the next, so
			// the chunks are many and small.
			last := f.publish(1)
			for !handedOut(h, last) && !closed(done) {
				runtime.Gosched()
			}
		}
	}
}

// closed reports whether ch is closed.
func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// handedOut reports whether every running fan of h is past seq.
func handedOut(h *Hub, seq uint64) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, f := range h.fans {
		if f.pos <= seq {
			return false
		}
	}
	return true
}

// seqBatch is a window's events as a test's prepared batch.
type seqBatch struct{ seqs []uint64 }

func (b *seqBatch) End() uint64 { return b.seqs[len(b.seqs)-1] + 1 }

// Fans of any batch type hand every member the very batch Prepare made,
// once per window, and refuse a config without Prepare.
func TestFansHandEveryMemberTheBatchPreparedOncePerWindow(t *testing.T) {
	t.Parallel()
	f := newFeed()
	var prepared atomic.Int64
	cfg := FansConfig[*seqBatch]{Subscribe: f.Subscribe, Queue: 8, Reads: 1,
		Prepare: func(evs []*fsm.Event) (*seqBatch, error) {
			prepared.Add(1)
			b := &seqBatch{}
			for _, ev := range evs {
				b.seqs = append(b.seqs, ev.Seq)
			}
			return b, nil
		}}
	_, err := NewFans(FansConfig[*seqBatch]{Subscribe: f.Subscribe, Queue: 1, Reads: 1})
	require.ErrorContains(t, err, "Prepare")
	fans, err := NewFans(cfg)
	require.NoError(t, err)
	defer fans.Close()
	key := Key{World: "arena"}
	a, pos := fans.Attach(key, 1)
	b, _ := fans.Attach(key, 1)
	require.EqualValues(t, 1, pos)
	f.publish(3)
	ba, bb := <-a.Chunks(), <-b.Chunks()
	require.Same(t, ba, bb, "one batch for both members")
	require.Equal(t, []uint64{1, 2, 3}, ba.seqs)
	require.EqualValues(t, 4, ba.End())
	require.EqualValues(t, 1, prepared.Load())
	fans.Detach(a)
	fans.Detach(b)
}

func TestChunkNamesItsRulesUpdatesAndSpans(t *testing.T) {
	t.Parallel()
	rules := func(seq, v uint64) *fsm.Event {
		return &fsm.Event{Seq: seq, Notice: &fsm.Notice{Kind: fsm.NoticeRules, RulesVersion: v}}
	}
	c, err := NewChunk(seqLines, 4, []*fsm.Event{{Seq: 4}, rules(5, 2),
		{Seq: 6, Notice: &fsm.Notice{Kind: fsm.NoticeCheckpointMismatch}}, rules(7, 3), {Seq: 8}})
	require.NoError(t, err)
	for _, tc := range []struct{ from, seq, version uint64 }{{4, 5, 2}, {5, 5, 2}, {6, 7, 3}, {7, 7, 3}} {
		seq, v, ok := c.RulesUpdate(tc.from)
		require.True(t, ok, "from %d", tc.from)
		require.Equal(t, [2]uint64{tc.seq, tc.version}, [2]uint64{seq, v})
	}
	_, _, ok := c.RulesUpdate(8)
	require.False(t, ok)
	require.Equal(t, "4\n5\n", string(c.Span(4, 6)))
	require.Equal(t, "6\n7\n8\n", string(c.Span(6, 9)))
	require.Empty(t, c.Span(6, 6))
}
