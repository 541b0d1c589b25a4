package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
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
	needs, err := a.moveNeeds(ctx, world)
	if err != nil {
		return wire.WorldMoved{}, err
	}
	unsalted, err := a.checkTarget(ctx, dst, world, to, needs)
	if err != nil {
		return wire.WorldMoved{}, err
	}
	e, err := a.exportMoved(ctx, world, to, unsalted, needs)
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

// moveNeeds returns what the import of world needs when its rules need
// more than any export format does (shard.MoveNeeds: a quantum, log 16),
// read from the world's rules at the leader of its group (this node's
// group, or GET /v1/worlds/{world} there), the zero Versions when
// nothing more or when the world is unknown there (the fence tells). Any
// other error ends the move before its fence.
func (a *API) moveNeeds(ctx context.Context, world string) (fsm.Versions, error) {
	var rules fsm.Rules
	err := a.RouteCall(world, edge.KindRead, edge.NoHop, func(g edge.Group) error {
		if src, ok := g.(shard.MoveSource); ok {
			if info, err := src.World(world); err == nil {
				rules = info.Rules
			}
		}
		return nil // a group that cannot move worlds: the export tells
	}, func(rt edge.Route) error {
		var got struct {
			Rules json.RawMessage `json:"rules"`
		}
		err := a.CallNode(ctx, rt, http.MethodGet, "/v1/worlds/"+url.PathEscape(world), nil, "", &got)
		if re, ok := errors.AsType[*edge.RemoteError](err); ok && re.Code == fsm.CodeUnknownWorld {
			return nil
		}
		if err != nil {
			return err
		}
		if len(got.Rules) == 0 {
			return nil
		}
		return rules.UnmarshalJSON(got.Rules)
	})
	if err != nil {
		return fsm.Versions{}, fmt.Errorf("move %s: read its rules at its home: %w", world, err)
	}
	return shard.MoveNeeds(rules), nil
}

// checkTarget asks the leader of group to, through rt, whether it would
// import an export of format 2 (shard.ExportFormatGate: a salted world's,
// and any world's when it would), before anything is fenced: it returns
// why not ("" when it would). A leader on a binary before log 15 has no
// check step (it answers malformed) and reads no format 2 export either.
// Any other error ends the move, world_exists among them: the target
// holds a copy of the world no import replaces (shard.CheckTargetCopy:
// its fenced copy from an earlier stay, a move back).
//
// With needs (moveNeeds: the world's rules need log 16), the step carries
// them and the target's gate answers for them (shard.CheckTargetRules):
// any refusal ends the move with nothing fenced, version_gate among them,
// and so does a leader that does not know the step's needs (it answers
// malformed: a binary before them), which must not pass silently.
func (a *API) checkTarget(ctx context.Context, rt edge.Route, world string, to uint64, needs fsm.Versions) (string, error) {
	var err error
	if rt.Local() {
		if err := shard.CheckTargetCopy(rt.Group, world, to); err != nil {
			return "", err
		}
		if err := shard.CheckTargetRules(rt.Group, world, needs); err != nil {
			return "", err
		}
		err = shard.ExportFormatGate(rt.Group)
	} else {
		var ok struct{}
		step := wire.MoveStep{Step: wire.MoveStepCheck, To: to}
		if !needs.IsZero() {
			step.Needs = &needs
		}
		err = a.callMove(ctx, rt, world, step, &ok)
	}
	re, remote := errors.AsType[*edge.RemoteError](err)
	switch {
	case err == nil:
		return "", nil
	case !needs.IsZero() && remote && re.Code == fsm.CodeMalformed:
		return "", fmt.Errorf("move %s: its rules need %s at the target, and group %d's leader %s cannot check that its voters read them (a binary without the move check's needs: %s); nothing fenced: upgrade it first: %w", world, needs, to, rt.Node, re.Msg, store.ErrVersionGate)
	case !needs.IsZero() && remote && re.Code == edge.CodeVersionGate:
		return "", fmt.Errorf("move %s: check at the target: %s: %w", world, re.Msg, store.ErrVersionGate)
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
