package shard

import (
	"context"
	"errors"
	"fmt"

	"github.com/gsd-dev/gsd/fsm"
)

// ErrMoveRaced: the world changed on the source between its fence and its
// export (dropped and created again); nothing was imported.
var ErrMoveRaced = errors.New("gsd/shard: world changed during its move")

// MoveSource is the group a world leaves; *store.Store has these methods.
type MoveSource interface {
	World(id string) (fsm.WorldInfo, error)
	MoveWorld(ctx context.Context, world string, shard, incarnation uint64) (fsm.Fence, error)
	ExportWorld(world string) ([]byte, uint64, error)
}

// MoveTarget is the group a world joins; *store.Store has these methods.
type MoveTarget interface {
	World(id string) (fsm.WorldInfo, error)
	ImportWorld(ctx context.Context, world string, blob []byte) (fsm.WorldInfo, error)
}

// Publish makes world's new home known: the shard map's update. With the
// meta group (gsd --meta) it is meta.Group.Publish, which assigns the
// world in the replicated map; with the static map (gsd --shard-map) it
// may log, and the operator edits the map's worlds entry and restarts the
// nodes with it (writes through a node with the old map are refused with
// world_moved meanwhile, never applied).
type Publish func(ctx context.Context, world string, shard uint64) error

// Move moves world from src to dst, the group of shard to, and returns
// the world's seq at the fence: the last event at its old home, the next
// one (N+1) commits on dst.
//
//  1. Fence on src (fsm.CmdMoveWorld): from its commit on, src refuses
//     every write to the world with world_moved naming to.
//  2. Export the fenced world from src's applied state (it cannot change
//     any more, so any replica that applied the fence gives the same
//     bytes).
//  3. Import it on dst (fsm.CmdImportWorld): seq, idempotency windows,
//     sessions, bans, player data and hash history come along.
//  4. publish(ctx, world, to), when not nil.
//
// The world stays fenced on src, not dropped: a node whose shard map is
// still stale gets world_moved rather than unknown_world, and reads of the
// old home (its state at N, its event archive up to N) keep working. Drop
// it with a world delete on src once every node routes to dst; from then
// on a stale write there answers unknown_world.
//
// Before step 1, CheckTarget asks dst's version gate whether its voters
// read the world's import (a salted world's needs log 15): a move dst
// would refuse fences nothing.
//
// Writes to the world are refused from the fence's commit until dst's
// import commits and the routers learn of it: that is the freeze
// players see. Move is safe to retry after any error: a fence to the same
// shard is repeated harmlessly, and an import that committed before the
// error is recognised (same incarnation, imported) and not redone.
func Move(ctx context.Context, src MoveSource, dst MoveTarget, world string, to uint64, publish Publish) (uint64, error) {
	if err := CheckTarget(src, dst, world); err != nil {
		return 0, err
	}
	e, err := FenceAndExport(ctx, src, world, to)
	if err != nil {
		return 0, err
	}
	if err := ImportMoved(ctx, dst, world, e); err != nil {
		return 0, err
	}
	if publish != nil {
		if err := publish(ctx, world, to); err != nil {
			return 0, fmt.Errorf("move %s: publish: %w", world, err)
		}
	}
	return e.Seq, nil
}

// ImportGate is what a target that gates its commands by its voters'
// versions has (*store.Store): store.ErrVersionGate when a voter would not
// read the import of a world, salted or not, moving there.
type ImportGate interface {
	ImportGate(salted bool) error
}

// CheckTarget refuses, before anything is fenced, the move of world from
// src to dst when dst's voters would not read its import: a salted
// world's export (fsm export format 2) needs every one at log 15, and a
// fence whose import cannot land would refuse the world's writes until
// they are upgraded. A dst without ImportGate is not checked.
func CheckTarget(src MoveSource, dst any, world string) error {
	g, ok := dst.(ImportGate)
	if !ok {
		return nil
	}
	from, err := src.World(world)
	if err != nil {
		return fmt.Errorf("move %s: %w", world, err)
	}
	if err := g.ImportGate(from.Salted); err != nil {
		return fmt.Errorf("move %s: the target cannot import it, nothing fenced: %w", world, err)
	}
	return nil
}

// Export is a fenced world's export (Move's steps 1 and 2), what crosses
// between processes when the two groups' leaders are different nodes.
type Export struct {
	Incarnation uint64 // the world's, kept on its new home
	Seq         uint64 // the world's seq at the fence
	Data        []byte // fsm's export encoding
}

// FenceAndExportOn is FenceAndExport on g, a node's group as the edge
// hands it (the leader's *store.Store): fsm.ErrNotSupported when g cannot
// move worlds.
func FenceAndExportOn(ctx context.Context, g any, world string, to uint64) (Export, error) {
	src, ok := g.(MoveSource)
	if !ok {
		return Export{}, fmt.Errorf("%w: this node's groups cannot move worlds", fsm.ErrNotSupported)
	}
	return FenceAndExport(ctx, src, world, to)
}

// FenceAndExport runs Move's steps 1 and 2 on src, which must lead the
// world's group: fence world towards shard to (a repeated fence to the
// same shard answers the first one, so this is safe to call again), then
// export it. A src that is shard to's group itself (it has GroupID, as
// *store.Store does) is refused with fsm.ErrWorldExists, fencing nothing.
func FenceAndExport(ctx context.Context, src MoveSource, world string, to uint64) (Export, error) {
	// A stale map can route a move's export to the world's new home (the
	// move done, the node asked not yet knowing): a fence there, towards
	// the shard it is on, would refuse every write to the world for good.
	if g, ok := src.(interface{ GroupID() uint64 }); ok && g.GroupID() == to {
		return Export{}, fmt.Errorf("move %s: %w on shard %d, the move's target, already (a stale shard map routed the move here)", world, fsm.ErrWorldExists, to)
	}
	from, err := src.World(world)
	if err != nil {
		return Export{}, fmt.Errorf("move %s: %w", world, err)
	}
	fence, err := src.MoveWorld(ctx, world, to, from.Incarnation)
	if err != nil {
		return Export{}, fmt.Errorf("move %s: fence: %w", world, err)
	}
	blob, seq, err := src.ExportWorld(world)
	if err != nil {
		return Export{}, fmt.Errorf("move %s: export: %w", world, err)
	}
	if seq != fence.Seq {
		// Only if the world was dropped and created again in between.
		return Export{}, fmt.Errorf("move %s: export at seq %d, fenced at %d: %w", world, seq, fence.Seq, ErrMoveRaced)
	}
	return Export{Incarnation: from.Incarnation, Seq: seq, Data: blob}, nil
}

// ImportMoved runs Move's step 3 on dst, which must lead the target
// group: an import that committed before (the world there, imported,
// with e's incarnation) is recognised and not redone.
func ImportMoved(ctx context.Context, dst MoveTarget, world string, e Export) error {
	_, err := dst.ImportWorld(ctx, world, e.Data)
	if err == nil {
		return nil
	}
	if !errors.Is(err, fsm.ErrWorldExists) {
		return fmt.Errorf("move %s: import: %w", world, err)
	}
	got, gerr := dst.World(world)
	if gerr != nil || got.Imported == 0 || got.Incarnation != e.Incarnation {
		return fmt.Errorf("move %s: import: %w (not an earlier import of this world)", world, err)
	}
	return nil // a retry: this import committed before
}

// MoveWorld moves world from group from to group to, both run by this
// node (see Move). Their stores propose only where they lead: a group led
// elsewhere answers store.ErrNotLeader, and nothing further happens.
// Once moved, this node's replica of the new home copies the world's
// events up to the fence from the old one (CopyMovedArchive), after the
// publish so that the freeze does not wait for it; a copy that fails is
// logged and left to the next Backend.CopyMovedArchives.
func (m *Manager) MoveWorld(ctx context.Context, world string, from, to uint64, publish Publish) (uint64, error) {
	src, ok := m.Group(from)
	if !ok {
		return 0, fmt.Errorf("move %s: group %d: %w", world, from, ErrUnknownGroup)
	}
	dst, ok := m.Group(to)
	if !ok {
		return 0, fmt.Errorf("move %s: group %d: %w", world, to, ErrUnknownGroup)
	}
	seq, err := Move(ctx, src, dst, world, to, publish)
	if err != nil {
		return 0, err
	}
	if n, err := CopyMovedArchive(ctx, dst, ArchiveOf(src, world), world, seq, MovedArchivePage); err != nil {
		m.log.Warn("moved world's archive not copied yet; retried by the next sweep", "world", world, "fence", seq, "copied", n, "err", err)
	}
	return seq, nil
}
