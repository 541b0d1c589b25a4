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
