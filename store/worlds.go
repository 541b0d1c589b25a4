package store

import (
	"context"
	"time"

	"github.com/gsd-dev/gsd/fsm"
)

// World returns one world's summary from this node's applied state.
func (s *Store) World(id string) (fsm.WorldInfo, error) { return s.fsm.World(id) }

// DeleteWorld proposes one fsm.CmdDeleteWorld: world and everything keyed
// by it in the state go on every replica, and each replica's feed drops
// the world's tail and its events in the archive (fsmAdapter). incarnation,
// when not 0, must be the world's (a delete meant for an earlier
// incarnation leaves a re-created world alone). It returns the world as it
// was. Errors: fsm.ErrUnknownWorld, ErrVersionGate while a voter does not
// read log version 6, ErrNotLeader, ErrOutcomeUnknown as for any write.
func (s *Store) DeleteWorld(ctx context.Context, world string, incarnation uint64) (fsm.WorldInfo, error) {
	return s.deleteWorld(ctx, &fsm.WorldDelete{World: world, Incarnation: incarnation})
}

// ExpireIdleWorlds proposes, for each world whose rules set idle_expiry
// and that is idle by this node's clock, a delete on the condition that it
// is still idle on the leader time the delete commits with (the FSM
// decides). It returns the worlds deleted. The leader calls it
// periodically; a world that became active meanwhile stays (fsm.ErrWorldActive
// is not an error here).
func (s *Store) ExpireIdleWorlds(ctx context.Context) ([]fsm.WorldInfo, error) {
	var out []fsm.WorldInfo
	for _, c := range s.fsm.IdleWorlds(time.Now()) {
		wi, err := s.deleteWorld(ctx, &c)
		switch {
		case err == nil:
			out = append(out, wi)
		case fsm.Code(err) == fsm.CodeWorldActive, fsm.Code(err) == fsm.CodeUnknownWorld:
			// Active again, or deleted meanwhile: nothing to do.
		default:
			return out, err
		}
	}
	return out, nil
}

func (s *Store) deleteWorld(ctx context.Context, c *fsm.WorldDelete) (fsm.WorldInfo, error) {
	if err := c.Validate(); err != nil {
		return fsm.WorldInfo{}, err
	}
	o, err := s.propose(ctx, fsm.Command{Kind: fsm.CmdDeleteWorld, Delete: c})
	if err != nil {
		return fsm.WorldInfo{}, err
	}
	if o.res.Err != nil {
		return fsm.WorldInfo{}, o.res.Err
	}
	return *o.res.Deleted, nil
}
