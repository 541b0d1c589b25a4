package shard

import (
	"context"
	"errors"
	"fmt"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/store"
)

// ErrMoveRaced: the world changed on the source between its fence and its
// export (dropped and created again); nothing was imported.
var ErrMoveRaced = errors.New("gsd/shard: world changed during its move")

// MoveSource is the group a world leaves; *store.Store has these methods.
type MoveSource interface {
	World(id string) (fsm.WorldInfo, error)
	MoveWorld(ctx context.Context, world string, shard, incarnation uint64) (fsm.Fence, error)
	ExportWorld(world string, format byte) ([]byte, uint64, error)
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
//     world for the same format, and the same bytes but for format 2's
//     data versions where a replica holds 0 for data another holds at T:
//     fsm/playerdata.go): in export format 2 when dst's voters
//     read it (log 15), which keeps the players' data versions, else, for
//     an unsalted world, in format 1 (the import restamps them).
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
// Before step 1 the move refuses, with nothing fenced, a target that
// holds a copy of the world no import can replace (CheckTargetCopy). An
// earlier home's fenced copy, the move back C→B→A, A→B, is replaced by
// the import (log 17, fsm.CmdImportWorldBack) when it is of the world's
// incarnation and every member of the target reads log 17; else the move
// is refused there. And it asks
// dst's version gate whether its voters read
// an export of format 2 (log 15: ExportFormatGate). The answer picks the
// export's format (step 2), and a salted world, which only format 2
// holds, is refused with nothing fenced when they do not.
//
// It also asks dst's gate whether its voters read the world's rules
// (CheckTargetRules: a quantum needs log 16 whatever the export's
// format, fsm.ImportRulesNeeds), and refuses with nothing fenced when
// they do not: the import would be refused (version_gate) and the world
// would refuse its writes until they were upgraded.
//
// Writes to the world are refused from the fence's commit until dst's
// import commits and the routers learn of it: that is the freeze
// players see. Move is safe to retry after any error: a fence to the same
// shard is repeated harmlessly, and an import that committed before the
// error is recognised (same incarnation, imported) and not redone.
func Move(ctx context.Context, src MoveSource, dst MoveTarget, world string, to uint64, publish Publish) (uint64, error) {
	inc := uint64(0)
	if from, err := src.World(world); err == nil {
		inc = from.Incarnation
	}
	if err := CheckTargetCopy(dst, world, to, inc); err != nil {
		return 0, err
	}
	if err := CheckTargetRules(dst, world, RulesNeeds(src, world)); err != nil {
		var fence *fsm.Fence
		if info, ierr := src.World(world); ierr == nil {
			fence = info.Moved
		}
		return 0, fmt.Errorf("%w; %s", err, FenceState(fence))
	}
	e, err := FenceAndExportFor(ctx, src, world, to, ExportFormatGate(dst))
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

// *store.Store is what a move's steps take on either side.
var (
	_ MoveSource   = (*store.Store)(nil)
	_ MoveTarget   = (*store.Store)(nil)
	_ ImportGate   = (*store.Store)(nil)
	_ RulesGate    = (*store.Store)(nil)
	_ MoveBackGate = (*store.Store)(nil)
)

// ImportGate is what a target that gates its commands by its voters'
// versions has (*store.Store): store.ErrVersionGate when a voter would not
// read the import of a world export of format (fsm.ImportNeeds).
type ImportGate interface {
	ImportGate(format byte) error
}

// RulesGate is what a target that gates its commands by its voters'
// versions has (*store.Store): store.ErrVersionGate when a voter would
// not read an import that needs need (fsm.ImportRulesNeeds).
type RulesGate interface {
	ImportGateNeeds(need fsm.Versions) error
}

// RulesNeeds returns what the import of world's export needs for its
// rules beyond what any export format needs (fsm.ImportRulesNeeds of
// format 1: a quantum, log 16), from src's copy; the zero Versions when
// nothing more, or when src does not hold the world (the fence tells).
func RulesNeeds(src MoveSource, world string) fsm.Versions {
	info, err := src.World(world)
	if err != nil {
		return fsm.Versions{}
	}
	if need := fsm.ImportRulesNeeds(1, info.Rules); need != fsm.ImportNeeds(1) {
		return need
	}
	return fsm.Versions{}
}

// CheckTargetRules returns why dst would refuse the import of world,
// whose rules need need (RulesNeeds; zero: nothing beyond the export's
// format), wrapping store.ErrVersionGate; nil when it would not, when
// need is zero or when dst has no RulesGate. A move asks it before the
// fence (Move; api's check step), so such a world is refused with
// nothing fenced; the error does not say so, since only the source knows
// whether an earlier attempt fenced it (the caller says: FenceState).
func CheckTargetRules(dst any, world string, need fsm.Versions) error {
	g, ok := dst.(RulesGate)
	if !ok || need.IsZero() {
		return nil
	}
	if err := g.ImportGateNeeds(need); err != nil {
		return fmt.Errorf("move %s: its rules need %s at the target, which cannot import it: %w", world, need, err)
	}
	return nil
}

// ExportFormatGate returns why dst would refuse the import of an export
// of format 2, fsm.ExportFormat (store.ErrVersionGate: a voter below log
// 15), nil when it would not or has no ImportGate. A move exports in
// format 2 only when it is nil (FenceAndExportFor).
func ExportFormatGate(dst any) error {
	if g, ok := dst.(ImportGate); ok {
		return g.ImportGate(fsm.ExportFormat)
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

// Unimportable is the error of a target that would not import an export
// of format 2 (a salted world's), reason saying why (a step's Unsalted):
// store.ErrVersionGate; nil for no reason.
func Unimportable(reason string) error {
	if reason == "" {
		return nil
	}
	return fmt.Errorf("%w: %s", store.ErrVersionGate, reason)
}

// FenceAndExportOn is FenceAndExportFor on g, a node's group as the edge
// hands it (the leader's *store.Store): fsm.ErrNotSupported when g cannot
// move worlds.
func FenceAndExportOn(ctx context.Context, g any, world string, to uint64, gate error) (Export, error) {
	src, ok := g.(MoveSource)
	if !ok {
		return Export{}, fmt.Errorf("%w: this node's groups cannot move worlds", fsm.ErrNotSupported)
	}
	return FenceAndExportFor(ctx, src, world, to, gate)
}

// FenceAndExport runs Move's steps 1 and 2 on src, which must lead the
// world's group, for a target that reads export format 2: fence world
// towards shard to (a repeated fence to the same shard answers the first
// one, so this is safe to call again), then export it. A src that is
// shard to's group itself (it has GroupID, as *store.Store does) is
// refused with fsm.ErrWorldExists, fencing nothing.
func FenceAndExport(ctx context.Context, src MoveSource, world string, to uint64) (Export, error) {
	return FenceAndExportFor(ctx, src, world, to, nil)
}

// FenceAndExportFor is FenceAndExport for a target that says, in gate,
// why it would refuse the import of an export of format 2
// (ExportFormatGate; nil: it would not). With gate nil every world
// exports in format 2, which keeps its players' data versions; else an
// unsalted world exports in format 1 (the target restamps them), and a
// salted world, which only format 2 holds, is refused with gate before
// its fence, since a fence whose import cannot land would refuse the
// world's writes until the target's voters are upgraded (one fenced
// already exports in format 2 all the same: the target tells its
// refusal at the import, and a retry once it reads log 15 completes the
// move). The format depends on gate and the fenced world alone, never on
// the replica, so a retry towards the same target exports the same world
// in the same format (the same bytes but for format 2's data versions a
// replica holds as 0; an import that committed is recognised by
// incarnation, not by bytes).
func FenceAndExportFor(ctx context.Context, src MoveSource, world string, to uint64, gate error) (Export, error) {
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
	if from.Salted && from.Moved == nil && gate != nil {
		return Export{}, fmt.Errorf("move %s: salted, and the target cannot import it (nothing fenced): %w", world, gate)
	}
	fence, err := src.MoveWorld(ctx, world, to, from.Incarnation)
	if err != nil {
		return Export{}, fmt.Errorf("move %s: fence: %w", world, err)
	}
	format := byte(1)
	if gate == nil || from.Salted {
		format = fsm.ExportFormat
	}
	blob, seq, err := src.ExportWorld(world, format)
	if err != nil {
		return Export{}, fmt.Errorf("move %s: export: %w", world, err)
	}
	if seq != fence.Seq {
		// Only if the world was dropped and created again in between.
		return Export{}, fmt.Errorf("move %s: export at seq %d, fenced at %d: %w", world, seq, fence.Seq, ErrMoveRaced)
	}
	return Export{Incarnation: from.Incarnation, Seq: seq, Data: blob}, nil
}

// MoveBackGate is what a target that can replace a world's fenced copy
// has (*store.Store): store.ErrVersionGate while a member would not read
// the import that does it (fsm.CmdImportWorldBack, log 17).
type MoveBackGate interface {
	MoveBackGate() error
}

// CheckTargetCopy returns why dst, the group of shard to, cannot take
// world by the move's import, nil when it can: it holds no copy, or one
// that an earlier attempt of this move imported (imported, not fenced),
// or a fenced copy from an earlier stay there (a move back: C->B->A, then
// A->B, or a world created on B, moved to A and back) that the import
// replaces (fsm.CmdImportWorldBack: dst has MoveBackGate and every member
// reads log 17). inc, when not 0, is the world's incarnation at its
// current home: a fenced copy of another incarnation (left by a world
// deleted and created again) is never replaced. The refusals:
// fsm.ErrWorldExists for a copy dst created and holds live, or a fenced
// copy of another incarnation, or a target that cannot replace one (no
// MoveBackGate: a binary before log 17); a fenced copy while a member
// reads log 16 wraps both fsm.ErrWorldExists and the gate's
// store.ErrVersionGate (409 version_gate). A move asks it before the
// fence at the source (Move; api's check step): a fence whose import
// must fail would leave the world refusing writes on both shards, each
// fenced towards the other. A dst that cannot tell (no World) passes.
func CheckTargetCopy(dst any, world string, to, inc uint64) error {
	t, ok := dst.(interface {
		World(id string) (fsm.WorldInfo, error)
	})
	if !ok {
		return nil
	}
	got, err := t.World(world)
	if err != nil {
		return nil // absent (unknown_world): the import installs it
	}
	if got.Moved == nil {
		if got.Imported == 0 {
			return fmt.Errorf("move %s: %w on shard %d, the move's target: created there (incarnation %d), not moved there; nothing fenced", world, fsm.ErrWorldExists, to, got.Incarnation)
		}
		return nil // an earlier attempt's import, recognised by ImportMoved
	}
	copyOf := fmt.Sprintf("its fenced copy from an earlier stay there (incarnation %d, fenced towards shard %d at seq %d)", got.Incarnation, got.Moved.Shard, got.Moved.Seq)
	if inc != 0 && inc != got.Incarnation {
		return fmt.Errorf("move %s: %w on shard %d, the move's target: %s is of another incarnation than the world's %d, and a move back replaces only a copy of the same incarnation; nothing fenced: move the world to another shard", world, fsm.ErrWorldExists, to, copyOf, inc)
	}
	g, ok := dst.(MoveBackGate)
	if !ok {
		return fmt.Errorf("move %s: %w on shard %d, the move's target: %s, which this target cannot replace; nothing fenced: move the world to another shard", world, fsm.ErrWorldExists, to, copyOf)
	}
	if err := g.MoveBackGate(); err != nil {
		return fmt.Errorf("move %s: %w on shard %d, the move's target: %s; a move back replaces it only once every member of the shard reads log version 17; nothing fenced: %w", world, fsm.ErrWorldExists, to, copyOf, err)
	}
	return nil
}

// ImportMoved runs Move's step 3 on dst, which must lead the target
// group: an import that committed before (the world there, imported,
// not fenced, with e's incarnation) is recognised and not redone. A
// fenced copy from an earlier stay there is replaced by the import when
// it may be (store.Store.ImportWorld, fsm.CmdImportWorldBack: same
// incarnation, fenced at or before e's seq); one that is not replaced is
// never taken for this move's import, whatever its incarnation.
func ImportMoved(ctx context.Context, dst MoveTarget, world string, e Export) error {
	_, err := dst.ImportWorld(ctx, world, e.Data)
	if err == nil {
		return nil
	}
	if !errors.Is(err, fsm.ErrWorldExists) {
		return fmt.Errorf("move %s: import: %w", world, err)
	}
	got, gerr := dst.World(world)
	if gerr == nil && got.Moved != nil {
		return fmt.Errorf("move %s: import: %w (its fenced copy from an earlier stay there, fenced towards shard %d at seq %d, not replaced and not an import of this move)", world, err, got.Moved.Shard, got.Moved.Seq)
	}
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
