package store

import (
	"context"
	"time"

	"github.com/gsd-dev/gsd/fsm"
)

// ExpireSessions proposes one fsm.CmdSessionExpire for world: the FSM
// closes, at the leader time the command commits with, the world's
// sessions idle for longer than after, on every replica, and returns them.
// Errors: fsm.ErrMalformed (after out of range; nothing is proposed),
// fsm.ErrUnknownWorld, ErrVersionGate while a voter does not read log
// version 4, ErrNotLeader, ErrOutcomeUnknown as for any write.
func (s *Store) ExpireSessions(ctx context.Context, world string, after time.Duration) ([]fsm.SessionInfo, error) {
	c := &fsm.SessionExpiry{World: world, After: int64(after)}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	o, err := s.propose(ctx, fsm.Command{Kind: fsm.CmdSessionExpire, Expire: c})
	if err != nil {
		return nil, err
	}
	return o.res.Expired, o.res.Err
}

// IdleSessions reports whether this node's applied state holds a session
// of world idle for longer than after by this node's clock: the cheap test
// before ExpireSessions, so that a leader proposes nothing for worlds
// without idle sessions.
func (s *Store) IdleSessions(world string, after time.Duration) bool {
	return s.fsm.IdleSessions(world, time.Now(), after)
}
