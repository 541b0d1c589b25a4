package peer

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/shard"
	"github.com/gsd-dev/gsd/store"
	"github.com/gsd-dev/gsd/wire"
)

// PathMove is the pattern of a move's node-to-node call: the node the
// admin called (api/admin's move route) runs a move's step here when this
// node leads the group the step runs on.
//
//	POST /internal/v1/cluster/worlds/{world}/move   wire.MoveStep → wire.WorldExport | {}
const PathMove = "POST " + edge.InternalPrefix + "/cluster/worlds/{world}/move"

// groupRouter is what a move's import needs of the backend: where the
// target group's commands go (gsd --meta's).
type groupRouter interface {
	GroupRoute(g uint64) (edge.Route, error)
}

// RegisterMove adds the move call to mux.
func (p *API) RegisterMove(mux *http.ServeMux) {
	mux.HandleFunc(PathMove, p.internalOnly(p.Move))
}

// Move handles a move's step on this node: "export" fences the world on
// its group, which this node must lead, and answers its export, in
// format 2 when the step says the target was asked and reads it
// ("checked", no "unsalted"), else in format 1 for an unsalted world (a
// salted world, which only format 2 holds, refused before its fence);
// "import" imports the export on the group the step names, which this
// node must lead (replacing the world's fenced copy there on a move
// back, log 17); "needs" answers what the world's import needs, from its
// whole rules, and its fence when an earlier attempt fenced it
// (shard.ReadSource, wire.MoveSource), on its group, which this node must
// lead; "check" answers world_exists when that group holds a copy of the
// world no import replaces (shard.CheckTargetCopy: one it created, a
// fenced one of another incarnation, or a fenced one while a member reads
// log 16: then version_gate when the step says "back", world_exists
// otherwise), version_gate when the step has needs (a world whose rules
// need log 16) and a voter of that group does not read them
// (shard.CheckTargetRules), else whether it would import an export of
// format 2 (shard.ExportFormatGate: with "back" a wire.MoveCheck, else {}
// or version_gate); the export step refuses, before the fence, a world
// whose rules need more than its needs say the target was checked for
// (shard.CheckedRules). Each is refused
// not_leader otherwise, never sent on; all are safe to repeat
// (shard.FenceAndExportFor, shard.ImportMoved).
func (p *API) Move(w http.ResponseWriter, r *http.Request) {
	world := r.PathValue("world")
	if err := edge.CheckName("world", world); err != nil {
		p.WriteError(w, err, true)
		return
	}
	var step wire.MoveStep
	if !p.ReadJSON(w, r, p.Config().MaxBatchBodyBytes, &step) {
		return
	}
	ctx, cancel := p.RequestContext(r)
	defer cancel()
	var err error
	switch step.Step {
	case wire.MoveStepExport:
		var e shard.Export
		if e, err = p.exportMoved(ctx, world, step); err == nil {
			p.WriteJSON(w, http.StatusOK, wire.WorldExport{Incarnation: e.Incarnation, Seq: e.Seq, Data: e.Data})
			return
		}
	case wire.MoveStepImport:
		if err = p.importMoved(ctx, world, step); err == nil {
			p.WriteJSON(w, http.StatusOK, struct{}{})
			return
		}
	case wire.MoveStepNeeds:
		var src shard.SourceState
		if src, err = p.readSource(world); err == nil {
			p.WriteJSON(w, http.StatusOK, sourceAnswer(src))
			return
		}
	case wire.MoveStepCheck:
		var rt edge.Route
		if rt, err = p.targetRoute(step.To); err == nil {
			if err = shard.CheckTargetCopy(rt.Group, world, step.To, 0); err != nil {
				if !step.Back {
					// An older admin takes version_gate for the format's
					// answer and would fence: it gets world_exists.
					err = withoutGate(err)
				}
				break
			}
			if err = shard.CheckTargetRules(rt.Group, world, needs(step)); err != nil {
				break
			}
			gate := shard.ExportFormatGate(rt.Group)
			if step.Back && (gate == nil || errors.Is(gate, store.ErrVersionGate)) {
				var got wire.MoveCheck
				if gate != nil {
					got.Unsalted = gate.Error()
				}
				p.WriteJSON(w, http.StatusOK, got)
				return
			}
			if err = gate; err == nil {
				p.WriteJSON(w, http.StatusOK, struct{}{})
				return
			}
		}
	default:
		err = fmt.Errorf("%w: move step %q (want %q, %q, %q or %q)", fsm.ErrMalformed, step.Step, wire.MoveStepExport, wire.MoveStepImport, wire.MoveStepCheck, wire.MoveStepNeeds)
	}
	p.WriteError(w, err, true)
}

// withoutGate returns err, a refusal of the target's copy, as
// fsm.ErrWorldExists alone (its message kept): what a check step without
// Back answers for a move back that the target's version gate refuses.
func withoutGate(err error) error {
	if errors.Is(err, store.ErrVersionGate) {
		return fmt.Errorf("%w: %s", fsm.ErrWorldExists, err.Error())
	}
	return err
}

// notChecked is why the export step's target is taken not to read format
// 2 when the step says nothing of it (no Checked): an admin node on a
// binary before log 15 sends exactly that, and its target may not import
// an export of format 2. A salted world is then refused before its fence,
// an unsalted one exports in format 1.
const notChecked = "nobody asked the move's target whether it imports a salted world (an export step without \"checked\": the admin node runs a binary before log version 15); call the move through an upgraded node"

func (p *API) exportMoved(ctx context.Context, world string, step wire.MoveStep) (shard.Export, error) {
	reason := step.Unsalted
	if !step.Checked && reason == "" {
		reason = notChecked
	}
	gate := shard.Unimportable(reason)
	var e shard.Export
	// A move step names its world's home by the mover's map, which the
	// move placed: followed as this node's own map says.
	err := p.RouteCall(world, edge.KindWrite, edge.Hop{Forwarded: true}, func(g edge.Group) error {
		if err := shard.CheckedRules(g, world, needs(step)); err != nil {
			return err
		}
		var err error
		e, err = shard.FenceAndExportOn(ctx, g, world, step.To, gate)
		return err
	}, nil)
	return e, err
}

// readSource reads world's shard.SourceState on its group, which this
// node must lead (the needs step).
func (p *API) readSource(world string) (shard.SourceState, error) {
	var src shard.SourceState
	err := p.RouteCall(world, edge.KindWrite, edge.Hop{Forwarded: true}, func(g edge.Group) error {
		var err error
		src, err = shard.ReadSource(g, world)
		return err
	}, nil)
	return src, err
}

// sourceAnswer is src as the needs step answers it.
func sourceAnswer(src shard.SourceState) wire.MoveSource {
	var out wire.MoveSource
	if !src.Needs.IsZero() {
		out.Needs = &src.Needs
	}
	if src.Fenced != nil {
		out.Fenced = &wire.MoveFence{Shard: src.Fenced.Shard, Seq: src.Fenced.Seq}
	}
	return out
}

// needs is step's Needs, the zero Versions when it has none.
func needs(step wire.MoveStep) fsm.Versions {
	if step.Needs == nil {
		return fsm.Versions{}
	}
	return *step.Needs
}

func (p *API) importMoved(ctx context.Context, world string, step wire.MoveStep) error {
	if step.Export == nil {
		return fmt.Errorf("%w: an import step without its export", fsm.ErrMalformed)
	}
	rt, err := p.targetRoute(step.To)
	if err != nil {
		return err
	}
	dst, ok := rt.Group.(shard.MoveTarget)
	if !ok {
		return fmt.Errorf("%w: this node's groups cannot move worlds", fsm.ErrNotSupported)
	}
	return shard.ImportMoved(ctx, dst, world, shard.Export{Incarnation: step.Export.Incarnation, Seq: step.Export.Seq, Data: step.Export.Data})
}

// targetRoute returns group to, which this node must lead.
func (p *API) targetRoute(to uint64) (edge.Route, error) {
	gr, ok := p.Backend().(groupRouter)
	if !ok {
		return edge.Route{}, fmt.Errorf("%w: this node's shard map is not the meta group's (gsd --meta)", fsm.ErrNotSupported)
	}
	rt, err := gr.GroupRoute(to)
	if err != nil {
		return edge.Route{}, err
	}
	if !rt.Local() {
		return edge.Route{}, fmt.Errorf("%w: this node does not lead group %d", store.ErrNotLeader, to)
	}
	return rt, nil
}
