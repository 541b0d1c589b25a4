package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/shard"
	"github.com/gsd-dev/gsd/store"
	"github.com/gsd-dev/gsd/wire"
)

// worldMover is what a world's move needs of the backend: gsd --meta's,
// whose map the move's last step changes. Its errors wrap fsm.ErrNotFound
// (no such shard) or store.ErrNotLeader.
type worldMover interface {
	// ShardOf is the shard the node's map places world on now.
	ShardOf(world string) (uint64, error)
	// GroupRoute is where group g's commands go: this node's group when
	// it leads g, else g's leader.
	GroupRoute(g uint64) (edge.Route, error)
	// PublishWorld assigns world to shard in the meta map.
	PublishWorld(ctx context.Context, world string, shard uint64) error
}

// MoveWorld handles POST /v1/cluster/worlds/{world}/move (gsd --meta):
// it moves the world to the shard the body names from whatever node
// receives it (shard.Move's steps, each where it runs): fence and export
// at the leader of the world's group, import at the leader of the target
// group, each over the node-to-node service when that leader is another
// node (api/peer's move route), then publish in the meta group.
//
// Every step is safe to repeat, so a move that failed after its fence
// (the world refusing writes with world_moved, the map not yet changed)
// is completed by calling again: the fence says where the world goes, a
// repeated fence answers the first, and an import that committed before
// is recognised. A world the map already places on the target answers
// done.
func (a *API) MoveWorld(w http.ResponseWriter, r *http.Request) {
	world := r.PathValue("world")
	if err := edge.CheckName("world", world); err != nil {
		a.WriteError(w, err, true)
		return
	}
	m, ok := a.Backend().(worldMover)
	if !ok {
		a.notMeta(w)
		return
	}
	var body wire.WorldMove
	if !a.ReadJSON(w, r, a.Config().MaxBodyBytes, &body) {
		return
	}
	ctx, cancel := a.RequestContext(r)
	defer cancel()
	got, err := a.moveWorld(ctx, m, world, body.To)
	if err != nil {
		a.WriteError(w, err, true)
		return
	}
	a.WriteJSON(w, http.StatusOK, got)
}

func (a *API) moveWorld(ctx context.Context, m worldMover, world string, to uint64) (wire.WorldMoved, error) {
	from, err := m.ShardOf(world)
	if err != nil {
		return wire.WorldMoved{}, err
	}
	// The target must be a shard of the map before anything is fenced:
	// a world fenced towards nowhere would refuse writes until moved.
	dst, err := m.GroupRoute(to)
	if err != nil {
		return wire.WorldMoved{}, err
	}
	if from == to {
		return wire.WorldMoved{World: world, From: to, To: to, Done: true}, nil
	}
	src, err := a.readSource(ctx, world, to)
	if err != nil {
		return wire.WorldMoved{}, err
	}
	unsalted, err := a.checkTarget(ctx, dst, world, to, src)
	if err != nil {
		return wire.WorldMoved{}, err
	}
	e, err := a.exportMoved(ctx, world, to, unsalted, src.Needs)
	if err != nil {
		return wire.WorldMoved{}, err
	}
	if err := a.importMoved(ctx, dst, world, to, e); err != nil {
		return wire.WorldMoved{}, err
	}
	if err := m.PublishWorld(ctx, world, to); err != nil {
		return wire.WorldMoved{}, fmt.Errorf("move %s: publish: %w", world, err)
	}
	return wire.WorldMoved{World: world, From: from, To: to, Seq: e.Seq}, nil
}

// moveSource is what a move knows of its world at its home before the
// target's check: what its import needs (shard.SourceState's Needs) and
// its fence from an earlier attempt, or, when the leader there cannot
// tell (unknown: a binary before the needs step), the needs its log
// version allows (shard.NeedsAtMost), its fence unknown.
type moveSource struct {
	shard.SourceState
	unknown bool
	leader  string       // the leader that could not tell
	reads   fsm.Versions // what it reads (GET /v1/status)
}

// why says, after a refusal for the needs, where they came from when the
// world's home could not tell them ("" when it told).
func (s moveSource) why() string {
	if !s.unknown {
		return ""
	}
	return fmt.Sprintf(" (the needs are the most a group led by %s can hold: it reads %s and cannot tell what the world's rules need, a binary before the move's needs step; upgrade it, or the target's voters, first)", s.leader, s.reads)
}

// fenced says what a refusal before this call's fence leaves of the
// world at its home.
func (s moveSource) fenced() string {
	if s.unknown {
		return fmt.Sprintf("nothing fenced by this call (%s cannot tell whether an earlier attempt fenced the world)", s.leader)
	}
	return shard.FenceState(s.Fenced)
}

// readSource asks the leader of world's group what the world's import
// needs and whether an earlier attempt fenced it (shard.ReadSource: on
// this node's group when it leads it, else the needs step there). Only
// that leader holds the world's whole rules: the public world route
// answers them without the spectator keys, a quantum among them. A world
// unknown there, or a group that cannot move worlds, needs nothing (the
// fence tells). A leader that does not know the step (a binary before
// it: malformed, or 404 for one before moves) is asked what it reads
// (GET /v1/status), and the world taken to need what that allows
// (shard.NeedsAtMost): the target's gate is asked for it all the same.
// Any other error ends the move before its fence.
func (a *API) readSource(ctx context.Context, world string, to uint64) (moveSource, error) {
	var src moveSource
	err := a.RouteCall(world, edge.KindWrite, edge.NoHop, func(g edge.Group) error {
		st, err := shard.ReadSource(g, world)
		if errors.Is(err, fsm.ErrUnknownWorld) || errors.Is(err, fsm.ErrNotSupported) {
			return nil
		}
		src.SourceState = st
		return err
	}, func(rt edge.Route) error {
		var got wire.MoveSource
		err := a.callMove(ctx, rt, world, wire.MoveStep{Step: wire.MoveStepNeeds, To: to}, &got)
		re, remote := errors.AsType[*edge.RemoteError](err)
		switch {
		case err == nil:
			if got.Needs != nil {
				src.Needs = *got.Needs
			}
			if got.Fenced != nil {
				src.Fenced = &fsm.Fence{World: world, Shard: got.Fenced.Shard, Seq: got.Fenced.Seq}
			}
			return nil
		case remote && re.Code == fsm.CodeUnknownWorld:
			return nil
		case remote && (re.Code == fsm.CodeMalformed || re.Status == http.StatusNotFound):
			var st wire.Status
			if err := a.CallNode(ctx, rt, http.MethodGet, "/v1/status", nil, "", &st); err != nil {
				return fmt.Errorf("%s cannot tell what the world's rules need (%s), nor what it reads: %w", rt.Node, re.Msg, err)
			}
			reads := st.Versions
			if reads.IsZero() {
				reads = fsm.Baseline() // a node that reports nothing
			}
			src = moveSource{SourceState: shard.SourceState{Needs: shard.NeedsAtMost(reads)}, unknown: true, leader: rt.Node, reads: reads}
			return nil
		}
		return err
	})
	if err != nil {
		return moveSource{}, fmt.Errorf("move %s: ask its home what its rules need: %w", world, err)
	}
	return src, nil
}

// checkTarget asks the leader of group to, through rt, whether it would
// import an export of format 2 (shard.ExportFormatGate: a salted world's,
// and any world's when it would), before anything is fenced: it returns
// why not ("" when it would). Any error ends the move, world_exists and
// version_gate among them: the target holds a copy of the world no
// import replaces (shard.CheckTargetCopy: one it created, or its fenced
// copy from an earlier stay while a member reads log 16; a fenced copy
// every member can replace, log 17, is a move back, which goes on). The
// remote check says "back" (log 17), so that the format's answer comes
// in the body and a version_gate is the copy's or the needs'; a leader
// on an older binary answers that malformed and, when the world has no
// needs, is asked as before, where version_gate is the format's answer
// and a fenced copy world_exists; one before log 15 has no check step at
// all (malformed again) and reads no format 2 export either.
//
// With needs (readSource: the world's rules need log 16, or its home's
// leader cannot tell and its log allows that), the step carries them
// beside "back" and the target's gate answers for them
// (shard.CheckTargetRules): any refusal ends the move, version_gate among
// them, and so does a leader that answers malformed (a binary without the
// check's needs, whichever key it lacks), which must not pass silently:
// it is not asked again without them. The refusal says where the world
// stands: nothing fenced, or fenced already by an earlier attempt.
func (a *API) checkTarget(ctx context.Context, rt edge.Route, world string, to uint64, src moveSource) (string, error) {
	needs := src.Needs
	var err error
	if rt.Local() {
		if err := shard.CheckTargetCopy(rt.Group, world, to, 0); err != nil {
			return "", err
		}
		if err := shard.CheckTargetRules(rt.Group, world, needs); err != nil {
			return "", fmt.Errorf("%w%s; %s", err, src.why(), src.fenced())
		}
		err = shard.ExportFormatGate(rt.Group)
	} else {
		var got wire.MoveCheck
		step := wire.MoveStep{Step: wire.MoveStepCheck, To: to, Back: true}
		if !needs.IsZero() {
			step.Needs = &needs
		}
		err = a.callMove(ctx, rt, world, step, &got)
		if err == nil {
			return got.Unsalted, nil
		}
		re, remote := errors.AsType[*edge.RemoteError](err)
		switch {
		case !needs.IsZero():
			// Any refusal ends the move, malformed among them (below).
		case remote && re.Code == fsm.CodeMalformed:
			// A leader before log 17: asked as before, without back.
			var ok struct{}
			err = a.callMove(ctx, rt, world, wire.MoveStep{Step: wire.MoveStepCheck, To: to}, &ok)
		default:
			return "", fmt.Errorf("move %s: check at the target: %w", world, err)
		}
	}
	re, remote := errors.AsType[*edge.RemoteError](err)
	switch {
	case err == nil:
		return "", nil
	case !needs.IsZero() && remote && re.Code == fsm.CodeMalformed:
		return "", fmt.Errorf("move %s: its rules need %s at the target, and group %d's leader %s cannot check that its voters read them (a binary without the move check's needs: %s)%s; %s: upgrade it first: %w", world, needs, to, rt.Node, re.Msg, src.why(), src.fenced(), store.ErrVersionGate)
	case !needs.IsZero() && remote && re.Code == edge.CodeVersionGate:
		return "", fmt.Errorf("move %s: check at the target: %s%s; %s: %w", world, re.Msg, src.why(), src.fenced(), store.ErrVersionGate)
	case !needs.IsZero():
		// The local gate answered for the needs; any refusal ends the move.
	case errors.Is(err, store.ErrVersionGate):
		return err.Error(), nil
	case remote && re.Code == edge.CodeVersionGate:
		return re.Msg, nil
	case remote && re.Code == fsm.CodeMalformed:
		return fmt.Sprintf("group %d's leader %s has no move check (a binary before log version 15)", to, rt.Node), nil
	}
	return "", fmt.Errorf("move %s: check at the target: %w", world, err)
}

// exportMoved fences and exports world at its group's leader, the target
// checked (checkTarget); unsalted, when set, is why the target would not
// import an export of format 2. The step says so ("checked", and
// "unsalted" when set), and that decides the export's format at the
// source: 2 for every world when the target was checked and reads it,
// else 1 for an unsalted world (shard.FenceAndExportFor), the same on
// whichever replica leads the source group then. needs, when set, is what
// the target was checked for (checkTarget), which the source holds
// against its world's rules before the fence (shard.CheckedRules); a
// source that does not know the step's needs (malformed) is asked again
// without them, since the target was checked for them.
func (a *API) exportMoved(ctx context.Context, world string, to uint64, unsalted string, needs fsm.Versions) (shard.Export, error) {
	var e shard.Export
	err := a.RouteCall(world, edge.KindWrite, edge.NoHop, func(g edge.Group) error {
		if err := shard.CheckedRules(g, world, needs); err != nil {
			return err
		}
		var err error
		e, err = shard.FenceAndExportOn(ctx, g, world, to, shard.Unimportable(unsalted))
		return err
	}, func(rt edge.Route) error {
		var got wire.WorldExport
		step := wire.MoveStep{Step: wire.MoveStepExport, To: to, Checked: true, Unsalted: unsalted}
		if !needs.IsZero() {
			step.Needs = &needs
		}
		err := a.callMove(ctx, rt, world, step, &got)
		if re, ok := errors.AsType[*edge.RemoteError](err); ok && re.Code == fsm.CodeMalformed && step.Needs != nil {
			// A leader on a binary before the step's needs: the target
			// was checked for them, and it fences as it did.
			step.Needs = nil
			err = a.callMove(ctx, rt, world, step, &got)
		}
		if re, ok := errors.AsType[*edge.RemoteError](err); ok && re.Code == fsm.CodeMalformed {
			// A leader on a binary before log 15 knows neither "checked"
			// nor "unsalted" (it decodes strictly), fences no salted world
			// and exports an unsalted one in format 1; a log 15 one asked
			// this way refuses a salted world not fenced yet, as for any
			// export step unchecked, and exports an unsalted one in
			// format 1.
			step.Checked, step.Unsalted = false, ""
			err = a.callMove(ctx, rt, world, step, &got)
		}
		if err != nil {
			return fmt.Errorf("move %s: export at %s: %w", world, rt.Node, err)
		}
		e = shard.Export{Incarnation: got.Incarnation, Seq: got.Seq, Data: got.Data}
		return nil
	})
	return e, err
}

// importMoved imports e on group to through rt, its leader.
func (a *API) importMoved(ctx context.Context, rt edge.Route, world string, to uint64, e shard.Export) error {
	if rt.Local() {
		dst, ok := rt.Group.(shard.MoveTarget)
		if !ok {
			return fmt.Errorf("%w: this node's groups cannot move worlds", fsm.ErrNotSupported)
		}
		return shard.ImportMoved(ctx, dst, world, e)
	}
	step := wire.MoveStep{Step: wire.MoveStepImport, To: to, Export: &wire.WorldExport{Incarnation: e.Incarnation, Seq: e.Seq, Data: e.Data}}
	var ok struct{}
	if err := a.callMove(ctx, rt, world, step, &ok); err != nil {
		return fmt.Errorf("move %s: import at %s: %w", world, rt.Node, err)
	}
	return nil
}

func (a *API) callMove(ctx context.Context, rt edge.Route, world string, step wire.MoveStep, out any) error {
	b, err := json.Marshal(step)
	if err != nil {
		return err
	}
	return a.CallNode(ctx, rt, http.MethodPost, edge.InternalPrefix+strings.TrimPrefix(wire.PathWorldMove(world), "/v1"), b, "", out)
}
