package store

import (
	"testing"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
)

// trimTo drops t's oldest events until keep remain, as the feed's trim
// does once they are archived.
func trimTo(t *tail, keep int) {
	drop := len(t.events) - keep
	clear(t.events[:drop])
	t.events = t.events[drop:]
	t.first += uint64(drop)
}

// TestTailReusesItsArrayOnceTrimmedEventsFreedHalfOfIt: a tail that is
// trimmed as it grows (rounds of 100 events, 50 kept) settles on one
// array: its events move to the array's front instead of into a new array
// each time it fills, stay in seq order, and no slot outside them keeps an
// event.
func TestTailReusesItsArrayOnceTrimmedEventsFreedHalfOfIt(t *testing.T) {
	tl := &tail{first: 1}
	seq := uint64(1)
	var settled **fsm.Event // the array after the first rounds
	for round := range 50 {
		for range 100 {
			tl.push(&fsm.Event{Seq: seq})
			seq++
		}
		require.Equal(t, seq, tl.next())
		for i, ev := range tl.events {
			require.Equal(t, tl.first+uint64(i), ev.Seq, "round %d", round)
		}
		live := 0
		for _, ev := range tl.buf {
			if ev != nil {
				live++
			}
		}
		require.Equal(t, len(tl.events), live, "round %d: only the tail's events are held", round)
		if round == 10 {
			settled = &tl.buf[0]
		}
		if round > 10 {
			require.Same(t, settled, &tl.buf[0], "round %d: a new array", round)
		}
		trimTo(tl, 50)
	}
}

// TestTailLetsAnArrayFarTooBigForItsEventsGo: after a burst, a tail whose
// array is over 8 times its events moves them into a new array of their
// size when it fills, instead of holding the burst's array.
func TestTailLetsAnArrayFarTooBigForItsEventsGo(t *testing.T) {
	tl := &tail{first: 1}
	seq := uint64(1)
	for len(tl.events) < 4096 || len(tl.events) < cap(tl.events) {
		tl.push(&fsm.Event{Seq: seq})
		seq++
	}
	big := len(tl.buf)
	trimTo(tl, 10) // the array is full: the next push needs room
	tl.push(&fsm.Event{Seq: seq})
	seq++
	require.Less(t, len(tl.buf), big/8)
	for i, ev := range tl.events {
		require.Equal(t, tl.first+uint64(i), ev.Seq)
	}
	require.Equal(t, seq, tl.next())
}

// TestFeedRecyclesTheWrittenRoundsListForPublish: a round's list, once
// written, is where publish appends again: at once when nothing was
// published meanwhile, else after the next round is taken; emptied, and
// never one past maxPendingReuse.
func TestFeedRecyclesTheWrittenRoundsListForPublish(t *testing.T) {
	f := &feed{} // no writer goroutine: the test is the writer
	f.pending = append(f.pending, evs("w", 1, 3)...)
	round1 := f.takePendingLocked()
	require.Len(t, round1, 3)
	require.Nil(t, f.pending)
	f.pending = append(f.pending, evs("w", 4, 5)...) // published while round 1 is written
	f.recycleLocked(round1)
	require.Equal(t, []uint64{4, 5}, seqs(t, f.pending), "the events published meanwhile stay pending")
	require.Same(t, &round1[0], &f.spare[:1][0], "round 1's list waits as the spare")
	require.Nil(t, round1[0], "emptied")

	round2 := f.takePendingLocked()
	require.Equal(t, []uint64{4, 5}, seqs(t, round2))
	require.Empty(t, f.pending)
	require.Same(t, &round1[0], &f.pending[:1][0], "publish appends to round 1's list")
	require.Nil(t, f.spare)
	f.pending = nil // as if round 2's take found no spare: nothing to publish into meanwhile
	f.recycleLocked(round2)
	require.Same(t, &round2[0], &f.pending[:1][0], "round 2's list is pending at once")

	big := make([]*fsm.Event, 1, maxPendingReuse+1)
	big[0] = evs("w", 6, 6)[0]
	f.pending = nil
	f.recycleLocked(big)
	require.Nil(t, f.pending, "a list past maxPendingReuse is let go")
}
