package play

import (
	"fmt"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/spectator"
	"github.com/gsd-dev/gsd/wire"
)

// Players' keyframes (issue 13): a hello or resume with "keyframe": true
// gets, right after the welcome, the world's state as the player may see
// it (the same cut as its play stream: visible fields only; a game
// server's or admin's token sees everything) at the welcome's seq, the
// watch route's keyframe message. The stream then starts after that seq,
// so a player joining mid-match needs no HTTP reads, and a resume that
// asks for one skips the events it missed (and never meets archive_gap).
// It is not cut by interest: a player gets every entity it may see.
// A player who may see every field gets the world's signed audit
// checkpoint in it too (spectator.AddCheckpoint), as the watch's do.

// stateReader is what a backend offers for keyframes: a world's entities
// at a seq in one read, and the time of an event it holds (store.Store
// and shard.Backend have both).
type stateReader interface {
	Entities(world string) ([]fsm.EntityView, uint64, error)
	Event(world string, seq uint64) (*fsm.Event, bool)
}

// keyframe returns c's keyframe of its world in this node's applied state.
func (c *playConn) keyframe() (*wire.Keyframe, error) {
	sr, ok := c.s.b.(stateReader)
	if !ok {
		return nil, fmt.Errorf("%w: this node's backend reads no world state for keyframes", fsm.ErrNotSupported)
	}
	ents, seq, err := sr.Entities(c.world)
	if err != nil {
		return nil, err
	}
	var at int64
	if ev, ok := sr.Event(c.world, seq); ok {
		at = ev.Time
	}
	state := spectator.SeedState(c.world, seq, at, ents)
	pv, _, err := c.s.viewOf(c)
	if err != nil {
		return nil, err
	}
	if pv == nil {
		// Every view of a world that restricts no field sees every field.
		all, err := spectator.NewAccess(fsm.Rules{})
		if err != nil {
			return nil, err
		}
		k := spectator.Keyframe(all, state, nil, spectator.View{})
		// It sees every field: it may have the audit checkpoint.
		spectator.AddCheckpoint(k, nil, c.s.Config().Checkpoints)
		return k, nil
	}
	return spectator.Keyframe(pv.access, state, c.s.vis.TeamOf(c.world, pv.access), pv.view), nil
}
