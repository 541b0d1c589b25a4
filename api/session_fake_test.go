package api

import (
	"context"
	"fmt"

	"github.com/gsd-dev/gsd/fsm"
)

// Session implements Backend for the fake: opens succeed (acked at the
// world's seq), other commands need an open session.
func (f *fakeBackend) Session(ctx context.Context, kind fsm.CmdKind, c *fsm.SessionCmd) (fsm.SessionInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sessErr != nil {
		return fsm.SessionInfo{}, f.sessErr
	}
	w := f.worlds[c.World]
	if w == nil {
		return fsm.SessionInfo{}, fmt.Errorf("%w: %s", fsm.ErrUnknownWorld, c.World)
	}
	if f.sessions == nil {
		f.sessions = make(map[string]fsm.SessionInfo)
	}
	s, ok := f.sessions[c.ID]
	switch {
	case kind == fsm.CmdSessionOpen:
		s = fsm.SessionInfo{World: c.World, ID: c.ID, Player: c.Player, Acked: w.seq}
	case !ok:
		return fsm.SessionInfo{}, fmt.Errorf("%w: %s", fsm.ErrSessionUnknown, c.ID)
	case kind == fsm.CmdSessionAck:
		s.Acked = max(s.Acked, c.Seq)
	case kind == fsm.CmdSessionClose:
		delete(f.sessions, c.ID)
		return s, nil
	}
	f.sessions[c.ID] = s
	return s, nil
}
