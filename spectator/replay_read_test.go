package spectator

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fanout"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
)

// oneAtATime gives a feed's events one per Next, so a replay reads many
// batches.
type oneAtATime struct{ sub fanout.Subscription }

func (o *oneAtATime) Next(ctx context.Context) ([]*fsm.Event, error) {
	evs, err := o.sub.Next(ctx)
	if len(evs) > 1 {
		// Give back the rest: the fake feed's subscription reads on
		// from its position.
		s := o.sub.(*feedSub)
		s.next -= uint64(len(evs) - 1)
		evs = evs[:1]
	}
	return evs, err
}

// A replay that reads its feed ahead, many batches at a time and past a
// full read-ahead, applies every event once and in order, and sees
// events the feed got after its read-ahead found its end.
func TestReplayReadsAheadEveryEventOnceInOrder(t *testing.T) {
	a := access(t, map[string]string{"x": ""}, nil, fsm.TeamRule{})
	g := newGame(t, "w", strFields("x"))
	fd := newFeed()
	const n = 3*readAheadBatches + 2
	for i := range n {
		fd.push(g.act("ann", set("ann", "x", fsm.String(strconv.Itoa(i)))))
	}
	sub := func(world string, from uint64) (fanout.Subscription, error) {
		s, err := fd.subscribe(world, from)
		return &oneAtATime{s}, err
	}
	r, err := NewReplay(ReplayConfig{World: "w", Access: a, Subscribe: sub}, View{})
	require.NoError(t, err)
	ctx := context.Background()
	for seq := uint64(1); seq <= n; seq++ {
		_, err := r.SeekSeq(ctx, seq)
		require.NoError(t, err)
		require.Equal(t, seq, r.Seq())
	}
	_, err = r.SeekSeq(ctx, n+1)
	require.ErrorIs(t, err, ErrNotReached, "the feed's end")

	fd.push(g.act("ann", set("ann", "x", fsm.String("last"))))
	f, err := r.SeekSeq(ctx, n+1)
	require.NoError(t, err, "an event after the end the read-ahead found")
	require.Equal(t, fsm.String("last"), *decodeKeyframe(t, f).Entities["ann"].Fields["x"].Value)
}

// blocked is a subscription whose first Next waits for release,
// whatever its context says (a slow archive read), and gives ev; later
// ones find nothing more.
type blocked struct {
	release chan struct{}
	ev      *fsm.Event
	read    bool
}

func (b *blocked) Next(ctx context.Context) ([]*fsm.Event, error) {
	if b.read {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	<-b.release
	b.read = true
	return []*fsm.Event{b.ev}, nil
}

// A replay waiting for a slow read stops when its context ends, and
// takes what that read gave on its next call.
func TestReplayWaitingForAReadStopsWithItsContext(t *testing.T) {
	a := access(t, map[string]string{"x": ""}, nil, fsm.TeamRule{})
	g := newGame(t, "w", strFields("x"))
	b := &blocked{release: make(chan struct{}), ev: g.act("ann", set("ann", "x", fsm.String("a")))}
	sub := func(string, uint64) (fanout.Subscription, error) { return b, nil }
	r, err := NewReplay(ReplayConfig{World: "w", Access: a, Subscribe: sub}, View{})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	_, err = r.SeekSeq(ctx, 1)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Zero(t, r.Seq())

	close(b.release) // the read ends
	_, err = r.SeekSeq(context.Background(), 1)
	require.NoError(t, err)
	require.Equal(t, uint64(1), r.Seq())
}

// A read-ahead that ended full has its successor reading on as soon as
// the replay takes a batch of it, not only once the replay took them all
// (and waited for the successor's first read); the events still come
// once each and in order.
func TestReplayReadsOnWhileItTakesAFullReadAhead(t *testing.T) {
	a := access(t, map[string]string{"x": ""}, nil, fsm.TeamRule{})
	g := newGame(t, "w", strFields("x"))
	fd := newFeed()
	const n = 4*readAheadBatches + 8
	for i := range n {
		fd.push(g.act("ann", set("ann", "x", fsm.String(strconv.Itoa(i)))))
	}
	sub := func(world string, from uint64) (fanout.Subscription, error) {
		s, err := fd.subscribe(world, from)
		return &oneAtATime{s}, err
	}
	r, err := NewReplay(ReplayConfig{World: "w", Access: a, Subscribe: sub}, View{})
	require.NoError(t, err)
	ctx := context.Background()
	_, err = r.SeekSeq(ctx, 1)
	require.NoError(t, err)
	first := r.ra
	<-first.done // it read until out was full
	require.True(t, first.full)
	_, err = r.SeekSeq(ctx, 2)
	require.NoError(t, err)
	require.NotNil(t, first.next, "taking a batch of a full read-ahead starts its successor")
	require.Same(t, first, r.ra, "whose batches come after the rest of first's")
	for seq := uint64(3); seq <= n; seq++ {
		_, err := r.SeekSeq(ctx, seq)
		require.NoError(t, err)
		require.Equal(t, seq, r.Seq())
	}
	_, err = r.SeekSeq(ctx, n+1)
	require.ErrorIs(t, err, ErrNotReached, "the feed's end")
}
