package detect

import (
	"math"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
)

const msec = int64(time.Millisecond)

func (f *feed) spawn(at int64, npc string) { f.ev(at, "server", set(npc, "spawned", at)) }

func (f *feed) shot(at int64, p, npc string) {
	if npc == "" {
		f.ev(at, p, set(p, "shot_at", at))
		return
	}
	f.ev(at, p, fsm.Change{Entity: npc, Field: "hp", Op: fsm.OpIncr, Value: fsm.Int(-10)}, set(p, "shot_at", at))
}

// reactionsOf returns p's timed reactions and the mean of their logs
// against Reaction.Median.
func reactionsOf(f *feed, p string) (int, float64) {
	pl := f.d.players[p]
	return pl.reactions, pl.logReact / float64(max(pl.reactions, 1))
}

func TestAReactionWhileStillShootingAtAnotherTargetIsNotTimed(t *testing.T) {
	f := newFeed(t, DefaultConfig())
	f.spawn(0, "a")
	f.shot(400*msec, "p", "a") // a reaction of 400 ms
	f.spawn(500*msec, "b")
	f.shot(620*msec, "p", "") // still at a, 120 ms after b appeared
	f.shot(900*msec, "p", "b")
	n, mean := reactionsOf(f, "p")
	require.Equal(t, 1, n, "b's reaction is not timed: p shot 100 ms before it appeared")
	require.InDelta(t, math.Log(2), mean, 1e-9)

	f.spawn(2*sec, "c") // p's last shot 1.1 s before: not busy
	f.shot(2*sec+300*msec, "p", "c")
	n, mean = reactionsOf(f, "p")
	require.Equal(t, 2, n)
	require.InDelta(t, (math.Log(2)+math.Log(1.5))/2, mean, 1e-9)
	f.shot(2*sec+520*msec, "p", "c") // a second hit on c: not a reaction
	n, _ = reactionsOf(f, "p")
	require.Equal(t, 2, n)

	c := DefaultConfig()
	c.Reaction.Busy = 0 // times it, as the old fight's shot: 120 ms
	f = newFeed(t, c)
	f.spawn(0, "a")
	f.shot(400*msec, "p", "a")
	f.spawn(500*msec, "b")
	f.shot(620*msec, "p", "")
	f.shot(900*msec, "p", "b")
	n, mean = reactionsOf(f, "p")
	require.Equal(t, 2, n)
	require.InDelta(t, (math.Log(2)+math.Log(0.6))/2, mean, 1e-9)
}

func TestAReactionToATargetThatAppearedBeforeTheLastHitOnAnotherIsNotTimed(t *testing.T) {
	c := DefaultConfig()
	c.Reaction.Busy = 0 // the hit alone decides
	f := newFeed(t, c)
	f.spawn(0, "a")
	f.spawn(1*sec, "b")         // appears while p has not yet fired at a
	f.shot(1200*msec, "p", "a") // a's reaction: 1.2 s
	f.shot(1500*msec, "p", "b") // b's first shot since it appeared was at a
	n, mean := reactionsOf(f, "p")
	require.Equal(t, 1, n)
	require.InDelta(t, math.Log(6), mean, 1e-9)
}

func TestANegativeBusyIsRefused(t *testing.T) {
	c := DefaultConfig()
	c.Reaction.Busy = -time.Millisecond
	_, err := New(c)
	require.ErrorIs(t, err, ErrConfig)
}
