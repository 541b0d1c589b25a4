package store

import (
	"context"
	"fmt"

	"github.com/gsd-dev/gsd/fsm"
)

// World migration (issue 14): the group's side of shard.Move. See
// fsm/migrate.go for what the commands do.

// MoveWorld proposes one fsm.CmdMoveWorld, or fsm.CmdMoveWorldSalted for a
// world whose audit leaves are salted: from its commit on, every write to
// world on this group is refused with an *fsm.MovedError naming shard.
// It returns the fence, whose Seq is the world's last seq here. A repeated
// fence to the same shard returns the first one (a retried move) without
// proposing it again: a fence, once applied, does not change, and the
// repeated command would change nothing on any replica, while its version
// gate (log 15 for a salted world) could hold back the retry for good once
// an older voter joined after the fence. incarnation, when not 0, must be
// the world's. Errors: fsm.ErrUnknownWorld, fsm.ErrWorldMoved when the
// world moved to another shard, ErrVersionGate while a voter does not read
// log version 8 (15 for a salted world), ErrNotLeader, ErrOutcomeUnknown.
func (s *Store) MoveWorld(ctx context.Context, world string, shard, incarnation uint64) (fsm.Fence, error) {
	c := &fsm.WorldMove{World: world, Shard: shard, Incarnation: incarnation}
	if err := c.Validate(); err != nil {
		return fsm.Fence{}, err
	}
	w, err := s.fsm.World(world)
	if err == nil && w.Moved != nil && (incarnation == 0 || incarnation == w.Incarnation) {
		// What the fsm answers a repeated fence (moveWorld), from the
		// applied state, which holds it already.
		if w.Moved.Shard != shard {
			return fsm.Fence{}, &fsm.MovedError{Fence: *w.Moved}
		}
		return *w.Moved, nil
	}
	kind := fsm.CmdMoveWorld
	if err == nil && w.Salted {
		// Only log 15 fences a salted world; were the world re-created
		// unsalted before this applies, the kind fences it alike.
		kind = fsm.CmdMoveWorldSalted
	}
	o, err := s.propose(ctx, fsm.Command{Kind: kind, Move: c})
	if err != nil {
		return fsm.Fence{}, err
	}
	if o.res.Err != nil {
		return fsm.Fence{}, o.res.Err
	}
	return *o.res.Fence, nil
}

// ExportWorld returns world's complete state from this node's applied
// state, in export format (1, or 2, which keeps the player data versions
// and which a salted world needs: fsm.FSM.ExportWorld), for ImportWorld
// on another group, and the seq it reflects. The move picks the format
// for its target (ImportGate), so once the world is fenced every replica
// that applied the fence exports the same world for the same format: it
// needs no leader. The bytes are the same too, but for the data versions
// in format 2 of a replica that holds 0 where another holds a version
// (fsm/playerdata.go: a restore from a snapshot before format 8).
func (s *Store) ExportWorld(world string, format byte) ([]byte, uint64, error) {
	return s.fsm.ExportWorld(world, format)
}

// ImportWorld proposes one fsm.CmdImportWorld with a blob from
// ExportWorld: the world is installed on this group, its seq going on
// from the export's, and returned as installed. This group's event feed
// holds the world's events from the next seq on; earlier ones are in the
// old group's archive until shard copies them here (FillMoved; a
// subscription from before answers ErrArchiveGap until then).
//
// When this group holds the world fenced (a stay of the world here that
// ended: a move back), it proposes fsm.CmdImportWorldBack instead, which
// replaces that copy with the export when it is of the export's
// incarnation and fenced at or before its seq (else fsm.ErrWorldExists
// naming why); it needs every member at log 17 (MoveBackGate), else
// ErrVersionGate and nothing proposed. The archive keeps the events of
// the earlier stay: the copy from the old home fills only its holes.
// Errors: fsm.ErrWorldExists, fsm.ErrMalformed for a blob that does not
// decode or check out, ErrVersionGate (an export of format 2 needs every
// voter at log 15: see ImportGate; a move back log 17), ErrNotLeader,
// ErrOutcomeUnknown.
func (s *Store) ImportWorld(ctx context.Context, world string, blob []byte) (fsm.WorldInfo, error) {
	c := &fsm.WorldImport{World: world, Data: blob}
	if err := c.Validate(); err != nil {
		return fsm.WorldInfo{}, err
	}
	kind := fsm.CmdImportWorld
	if w, err := s.fsm.World(world); err == nil {
		if w.Moved == nil {
			return fsm.WorldInfo{}, fmt.Errorf("%w: %s", fsm.ErrWorldExists, world)
		}
		// A move back: only CmdImportWorldBack replaces the fenced copy
		// (log 17, which the gate asks every member for); the fsm checks
		// the copy's incarnation and fence against the export's.
		kind = fsm.CmdImportWorldBack
	}
	o, err := s.propose(ctx, fsm.Command{Kind: kind, Import: c})
	if err != nil {
		return fsm.WorldInfo{}, err
	}
	if o.res.Err != nil {
		return fsm.WorldInfo{}, o.res.Err
	}
	return *o.res.Imported, nil
}

// ImportGate returns ErrVersionGate when a voter of this group would not
// read the import of a world export of format (fsm.ImportNeeds: format 2,
// a salted world's and, towards a log 15 group, any world's, needs log
// 15), else nil. shard.Move asks it for format 2 before the fence at the
// world's old home: a salted world this group must refuse is then
// refused with nothing fenced, and an unsalted one moves in format 1.
func (s *Store) ImportGate(format byte) error {
	return s.gateNeed(fsm.ImportNeeds(format), fsm.CmdImportWorld)
}

// MoveBackGate returns ErrVersionGate when a member of this group would
// not read fsm.CmdImportWorldBack (log 17: fsm.MoveBackNeeds), the import
// that replaces a world's fenced copy here, else nil. A move to this
// group that finds such a copy asks it before the fence at the world's
// current home (shard.CheckTargetCopy): with an older member the move is
// refused there, nothing fenced, as before log 17.
func (s *Store) MoveBackGate() error {
	return s.gateNeed(fsm.MoveBackNeeds(), fsm.CmdImportWorldBack)
}

// ImportGateNeeds returns ErrVersionGate when a voter of this group does
// not read need, what an import needs (fsm.ImportRulesNeeds: a world
// whose rules set a quantum needs log 16 whatever the export's format),
// else nil. shard.Move asks it before the fence at the world's old home,
// from the source's rules, so that such a world is refused with nothing
// fenced rather than fenced for an import this group refuses.
func (s *Store) ImportGateNeeds(need fsm.Versions) error {
	return s.gateNeed(need, fsm.CmdImportWorld)
}
