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
	hook := f.sessHook
	f.mu.Unlock()
	if hook != nil {
		if err := hook(); err != nil {
			return fsm.SessionInfo{}, err
		}
	}
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
	case kind == fsm.CmdSessionImport:
		return fsm.SessionInfo{World: c.World, Player: c.Player}, nil
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

func (f *fakeBackend) SessionInfo(world, id string) (fsm.SessionInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.sessions[id]
	if !ok || s.World != world {
		return fsm.SessionInfo{}, fmt.Errorf("%w: %s", fsm.ErrSessionUnknown, id)
	}
	return s, nil
}

func (f *fakeBackend) Sessions(world string) ([]fsm.SessionInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.worlds[world] == nil {
		return nil, fmt.Errorf("%w: %s", fsm.ErrUnknownWorld, world)
	}
	var out []fsm.SessionInfo
	for _, s := range f.sessions {
		if s.World == world {
			out = append(out, s)
		}
	}
	return out, nil
}

func (f *fakeBackend) Banned(world, player string) (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.bans[world+"/"+player]
	return r, ok
}

func (f *fakeBackend) Bans(world string) ([]fsm.Ban, error) {
	return nil, fmt.Errorf("%w: %s", fsm.ErrUnknownWorld, world)
}

func (f *fakeBackend) PlayerData(world string) (map[string]map[string]fsm.Value, error) {
	return nil, fmt.Errorf("%w: %s", fsm.ErrUnknownWorld, world)
}

// SessionAcks implements Backend for the fake: like Session's ack, for
// each listed session that is open; every call is recorded in ackBatches.
func (f *fakeBackend) SessionAcks(ctx context.Context, acks []fsm.SessionAck) (int, error) {
	f.mu.Lock()
	hook := f.sessHook
	f.mu.Unlock()
	if hook != nil {
		if err := hook(); err != nil {
			return 0, err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ackBatches = append(f.ackBatches, append([]fsm.SessionAck(nil), acks...))
	if f.sessErr != nil {
		return 0, f.sessErr
	}
	n := 0
	for _, a := range acks {
		s, ok := f.sessions[a.ID]
		if !ok || s.World != a.World {
			continue
		}
		s.Acked = max(s.Acked, a.Seq)
		f.sessions[a.ID] = s
		n++
	}
	return n, nil
}
