package store

import (
	"context"
	"fmt"

	"github.com/gsd-dev/gsd/fsm"
)

// Session proposes one session command (fsm.CmdSessionOpen, Ack, Resume,
// Close, Data, Kick, Ban, Unban or Import) in the critical lane and returns the session as the
// command left it. Errors: fsm errors (unknown world or session, denied
// resume, malformed), ErrNotLeader when nothing was proposed,
// ErrOutcomeUnknown when the command may or may not commit.
func (s *Store) Session(ctx context.Context, kind fsm.CmdKind, c *fsm.SessionCmd) (fsm.SessionInfo, error) {
	switch kind {
	case fsm.CmdSessionOpen, fsm.CmdSessionAck, fsm.CmdSessionResume, fsm.CmdSessionClose, fsm.CmdSessionData,
		fsm.CmdSessionKick, fsm.CmdSessionBan, fsm.CmdSessionUnban, fsm.CmdSessionImport:
	default:
		return fsm.SessionInfo{}, fmt.Errorf("%w: command kind %d is not a session command", fsm.ErrMalformed, kind)
	}
	o, err := s.propose(ctx, fsm.Command{Kind: kind, Session: c})
	if err != nil {
		return fsm.SessionInfo{}, err
	}
	if o.res.Err != nil {
		return fsm.SessionInfo{}, o.res.Err
	}
	return *o.res.Session, nil
}

// SessionInfo returns one session from this node's applied state (stale).
func (s *Store) SessionInfo(world, id string) (fsm.SessionInfo, error) {
	return s.fsm.Session(world, id)
}

// Sessions returns a world's sessions from this node's applied state
// (stale), sorted by id.
func (s *Store) Sessions(world string) ([]fsm.SessionInfo, error) {
	return s.fsm.Sessions(world)
}

// Banned reports whether player is banned from world on this node's
// applied state (stale), and why.
func (s *Store) Banned(world, player string) (string, bool) {
	return s.fsm.Banned(world, player)
}

// Bans returns a world's banned players from this node's applied state.
func (s *Store) Bans(world string) ([]fsm.Ban, error) {
	return s.fsm.Bans(world)
}

// PlayerData returns every player's critical data in world from this
// node's applied state.
func (s *Store) PlayerData(world string) (map[string]map[string]fsm.Value, error) {
	return s.fsm.PlayerData(world)
}

// PlayerRecords returns every player's critical data in world and its
// version (fsm.FSM.PlayerRecords) from this replica's applied state.
func (s *Store) PlayerRecords(world string) ([]fsm.PlayerRecord, error) {
	return s.fsm.PlayerRecords(world)
}

// PlayerDataStamp returns a number that changes with every change of a
// player's data in world (fsm.FSM.PlayerDataStamp).
func (s *Store) PlayerDataStamp(world string) (uint64, error) {
	return s.fsm.PlayerDataStamp(world)
}

// SessionAcks proposes one fsm.CmdSessionAcks command (the acks of many
// play sessions, batched by an edge node) in the critical lane and returns
// how many of its acks applied: acks of sessions that no longer exist are
// skipped, not errors. Errors: fsm.ErrMalformed (no acks, more than
// fsm.MaxSessionAcks, a bad name; nothing is proposed), ErrNotLeader when
// nothing was proposed, ErrOutcomeUnknown when the command may or may not
// commit.
func (s *Store) SessionAcks(ctx context.Context, acks []fsm.SessionAck) (int, error) {
	// Checked before proposing: the decoder refuses an oversized command,
	// so one must never reach the log.
	if err := fsm.ValidateAcks(acks); err != nil {
		return 0, err
	}
	o, err := s.propose(ctx, fsm.Command{Kind: fsm.CmdSessionAcks, Acks: acks})
	if err != nil {
		return 0, err
	}
	return o.res.Acked, nil
}
