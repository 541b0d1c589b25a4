package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/api/internal/apitest"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/shard"
	"github.com/gsd-dev/gsd/store"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// moveFake is a backend whose map places worlds on shard 1 and knows
// shards 1 and 2; its groups (the fake) cannot move worlds.
type moveFake struct {
	*apitest.Fake
	routeErr, publishErr error
	published            []string
}

func (f *moveFake) ShardOf(world string) (uint64, error) { return 1, nil }

func (f *moveFake) GroupRoute(g uint64) (edge.Route, error) {
	if g > 2 {
		return edge.Route{}, fmt.Errorf("%w: shard %d", fsm.ErrNotFound, g)
	}
	return edge.Route{GroupID: "2", Group: f.Fake}, f.routeErr
}

func (f *moveFake) PublishWorld(_ context.Context, world string, shard uint64) error {
	f.published = append(f.published, fmt.Sprint(world, shard))
	return f.publishErr
}

func TestMoveRouteChecksItsInputAndItsBackend(t *testing.T) {
	t.Parallel()
	f := &moveFake{Fake: apitest.NewFake()}
	e := newEnvFor(t, f, withSecret)
	admin := []string{edge.HeaderClusterKey, testSecret}
	path := wire.PathWorldMove("arena")

	code, _, b := e.Do("POST", path, `{"to":1}`, admin...)
	require.Equal(t, 200, code, "%s", b)
	require.JSONEq(t, `{"world":"arena","from":1,"to":1,"seq":0,"done":true}`, string(b), "on shard 1 already")
	e.RequireError(404, fsm.CodeNotFound, "POST", path, `{"to":9}`, admin...)
	e.RequireError(422, fsm.CodeNotSupported, "POST", path, `{"to":2}`, admin...)
	require.Empty(t, f.published, "nothing fenced, nothing published")
	f.routeErr = fmt.Errorf("%w: no leader of group 2", store.ErrNotLeader)
	e.RequireError(503, edge.CodeNotLeader, "POST", path, `{"to":2}`, admin...)
	e.RequireError(400, fsm.CodeMalformed, "POST", path, `{"to":-1}`, admin...)
	e.RequireError(400, fsm.CodeMalformed, "POST", wire.PathWorldMove(strings.Repeat("w", fsm.MaxNameLen+1)), `{"to":2}`, admin...)
	e.RequireError(401, edge.CodeUnauthorized, "POST", path, `{"to":2}`)

	static := newEnvFor(t, shardFake{Fake: apitest.NewFake()})
	static.RequireError(422, fsm.CodeNotSupported, "POST", path, `{"to":2}`)
}

func TestMovePeerStepIsForNodesAndChecksItsStep(t *testing.T) {
	t.Parallel()
	f := &moveFake{Fake: apitest.NewFake()}
	e := newEnvFor(t, f, withSecret)
	peer := []string{edge.HeaderClusterKey, testSecret, edge.HeaderForwarded, "1"}
	path := edge.InternalPrefix + "/cluster/worlds/arena/move"

	e.RequireError(400, fsm.CodeMalformed, "POST", path, `{"step":"drop","to":2}`, peer...)
	e.RequireError(400, fsm.CodeMalformed, "POST", path, `{"step":"import","to":2}`, peer...)
	e.RequireError(422, fsm.CodeNotSupported, "POST", path, `{"step":"export","to":2}`, peer...)
	e.RequireError(422, fsm.CodeNotSupported, "POST", path, `{"step":"import","to":2,"export":{"incarnation":1,"seq":3,"data":""}}`, peer...)
	e.RequireError(404, fsm.CodeNotFound, "POST", path, `{"step":"import","to":9,"export":{"incarnation":1,"seq":3,"data":""}}`, peer...)
	f.routeErr = fmt.Errorf("%w: no leader of group 2", store.ErrNotLeader)
	e.RequireError(503, edge.CodeNotLeader, "POST", path, `{"step":"import","to":2,"export":{"incarnation":1,"seq":3,"data":""}}`, peer...)
	f.routeErr = nil
	e.RequireError(400, fsm.CodeMalformed, "POST", edge.InternalPrefix+"/cluster/worlds/"+strings.Repeat("w", fsm.MaxNameLen+1)+"/move", `{"step":"export","to":2}`, peer...)
	e.RequireError(401, edge.CodeUnauthorized, "POST", path, `{"step":"export","to":2}`)

	static := newEnvFor(t, shardFake{Fake: apitest.NewFake()}, withSecret)
	static.RequireError(422, fsm.CodeNotSupported, "POST", path, `{"step":"import","to":2,"export":{"incarnation":1,"seq":3,"data":""}}`, peer...)
}

// saltedMoveFake is a moveFake whose one group holds a salted world it
// fences and exports, and whose shard 2 is target.
type saltedMoveFake struct {
	*moveFake
	target *gateTarget
	// targetGroup, when set, is shard 2's group instead of target (a
	// target with more methods, e.g. a backTarget).
	targetGroup edge.Group
	remote      string // when set, shard 2's leader is another node there
	fenced      bool
	plain       bool   // when set, the world is not salted
	formats     []byte // the export formats asked for
	rules       fsm.Rules
}

func (f *saltedMoveFake) World(id string) (fsm.WorldInfo, error) {
	info := fsm.WorldInfo{ID: id, Incarnation: 3, Seq: 5, Salted: !f.plain, Rules: f.rules}
	if f.fenced {
		info.Moved = &fsm.Fence{World: id, Shard: 2, Seq: 5}
	}
	return info, nil
}

func (f *saltedMoveFake) MoveWorld(_ context.Context, world string, shard, _ uint64) (fsm.Fence, error) {
	f.fenced = true
	return fsm.Fence{World: world, Shard: shard, Seq: 5}, nil
}

func (f *saltedMoveFake) ExportWorld(_ string, format byte) ([]byte, uint64, error) {
	f.formats = append(f.formats, format)
	return append([]byte("GSDWRLD"), format), 5, nil
}

func (f *saltedMoveFake) GroupRoute(g uint64) (edge.Route, error) {
	switch {
	case g != 2:
		return f.moveFake.GroupRoute(g)
	case f.remote != "":
		return edge.Route{GroupID: "2", Node: "n2", Addr: f.remote}, nil
	case f.targetGroup != nil:
		return edge.Route{GroupID: "2", Group: f.targetGroup}, nil
	}
	return edge.Route{GroupID: "2", Group: f.target}, nil
}

// gateTarget is a target group whose version gate answers gate (for
// format 2, the only one a move asks about).
type gateTarget struct {
	*apitest.Fake
	gate      error
	rulesGate error          // what ImportGateNeeds answers
	asked     []fsm.Versions // the needs ImportGateNeeds was asked for
	imported  bool
	holds     *fsm.WorldInfo // when set, the group's copy of the world
}

func (g *gateTarget) ImportGate(byte) error { return g.gate }

func (g *gateTarget) ImportGateNeeds(need fsm.Versions) error {
	g.asked = append(g.asked, need)
	return g.rulesGate
}

var (
	_ shard.MoveSource = (*saltedMoveFake)(nil)
	_ shard.ImportGate = (*gateTarget)(nil)
	_ shard.RulesGate  = (*gateTarget)(nil)
	_ shard.MoveTarget = (*gateTarget)(nil)
)

func (g *gateTarget) World(id string) (fsm.WorldInfo, error) {
	if g.holds != nil {
		return *g.holds, nil
	}
	return fsm.WorldInfo{}, fmt.Errorf("%w: %s", fsm.ErrUnknownWorld, id)
}

// TestAMoveBackToAShardHoldingTheFencedCopyIsRefusedBeforeTheFence: shard
// 2 still holds the world's copy from an earlier stay, fenced towards
// shard 1, which no import replaces: the admin route (its target local)
// and the peer's check step answer world_exists, and nothing is fenced,
// imported or published.
func TestAMoveBackToAShardHoldingTheFencedCopyIsRefusedBeforeTheFence(t *testing.T) {
	t.Parallel()
	stale := &fsm.WorldInfo{ID: "arena", Incarnation: 3, Seq: 4, Imported: 9, Moved: &fsm.Fence{World: "arena", Shard: 1, Seq: 4}}
	f := &saltedMoveFake{moveFake: &moveFake{Fake: apitest.NewFake()}, target: &gateTarget{Fake: apitest.NewFake(), holds: stale}, plain: true}
	e := newEnvFor(t, f, withSecret)
	admin := []string{edge.HeaderClusterKey, testSecret}
	peer := []string{edge.HeaderClusterKey, testSecret, edge.HeaderForwarded, "1"}

	code, _, b := e.Do("POST", wire.PathWorldMove("arena"), `{"to":2}`, admin...)
	require.Equal(t, 409, code, "%s", b)
	require.Contains(t, string(b), fsm.CodeWorldExists)
	require.Contains(t, string(b), "fenced copy")
	e.RequireError(409, fsm.CodeWorldExists, "POST", edge.InternalPrefix+"/cluster/worlds/arena/move", `{"step":"check","to":2}`, peer...)
	require.False(t, f.fenced, "nothing fenced")
	require.False(t, f.target.imported)
	require.Empty(t, f.published)
}

// backTarget is a gateTarget that can replace a fenced copy (log 17)
// once back, its MoveBackGate's answer, is nil.
type backTarget struct {
	*gateTarget
	back error
}

func (g *backTarget) MoveBackGate() error { return g.back }

// TestAMoveBackToAShardHoldingTheFencedCopyReplacesItOnceItsMembersReadLog17
// (issue 14): shard 2 holds the world's fenced copy and can replace it.
// While a member reads log 16 the admin route answers version_gate, the
// peer's check step version_gate when asked with "back" and world_exists
// without it (an older admin would take version_gate for the format's
// answer and fence), and nothing is fenced. Once every member reads 17
// the move goes on: fence, import, publish.
func TestAMoveBackToAShardHoldingTheFencedCopyReplacesItOnceItsMembersReadLog17(t *testing.T) {
	t.Parallel()
	stale := &fsm.WorldInfo{ID: "arena", Incarnation: 3, Seq: 4, Imported: 9, Moved: &fsm.Fence{World: "arena", Shard: 1, Seq: 4}}
	target := &backTarget{gateTarget: &gateTarget{Fake: apitest.NewFake(), holds: stale}, back: fmt.Errorf("%w: voter n3 reads log 16", store.ErrVersionGate)}
	f := &saltedMoveFake{moveFake: &moveFake{Fake: apitest.NewFake()}, target: target.gateTarget, plain: true}
	f.targetGroup = target
	e := newEnvFor(t, f, withSecret)
	admin := []string{edge.HeaderClusterKey, testSecret}
	peer := []string{edge.HeaderClusterKey, testSecret, edge.HeaderForwarded, "1"}
	path := edge.InternalPrefix + "/cluster/worlds/arena/move"

	code, _, b := e.Do("POST", wire.PathWorldMove("arena"), `{"to":2}`, admin...)
	require.Equal(t, 409, code, "%s", b)
	require.Contains(t, string(b), edge.CodeVersionGate)
	require.Contains(t, string(b), "log version 17")
	e.RequireError(409, edge.CodeVersionGate, "POST", path, `{"step":"check","to":2,"back":true}`, peer...)
	e.RequireError(409, fsm.CodeWorldExists, "POST", path, `{"step":"check","to":2}`, peer...)
	require.False(t, f.fenced, "nothing fenced")
	require.False(t, target.imported)
	require.Empty(t, f.published)

	target.back = nil
	code, _, b = e.Do("POST", path, `{"step":"check","to":2,"back":true}`, peer...)
	require.Equal(t, 200, code, "%s", b)
	require.JSONEq(t, `{}`, string(b), "format 2 readable: nothing to say")
	code, _, b = e.Do("POST", wire.PathWorldMove("arena"), `{"to":2}`, admin...)
	require.Equal(t, 200, code, "%s", b)
	require.True(t, f.fenced)
	require.True(t, target.imported)
	require.Equal(t, []string{"arena2"}, f.published)
}

func (g *gateTarget) ImportWorld(_ context.Context, world string, _ []byte) (fsm.WorldInfo, error) {
	g.imported = true
	return fsm.WorldInfo{ID: world}, nil
}

// TestASaltedWorldsMoveToATargetThatCannotImportItFencesNothing: the
// admin route asks the target's leader (its "check" step) before the
// fence, and a salted world is refused version_gate when the target's
// gate says its voters do not read log 15; the peer's export step
// refuses it likewise when told so, and its check step answers the
// target's gate.
func TestASaltedWorldsMoveToATargetThatCannotImportItFencesNothing(t *testing.T) {
	t.Parallel()
	f := &saltedMoveFake{moveFake: &moveFake{Fake: apitest.NewFake()}, target: &gateTarget{Fake: apitest.NewFake(), gate: fmt.Errorf("%w: voter n3 reads log 14", store.ErrVersionGate)}}
	e := newEnvFor(t, f, withSecret)
	admin := []string{edge.HeaderClusterKey, testSecret}
	peer := []string{edge.HeaderClusterKey, testSecret, edge.HeaderForwarded, "1"}
	path := edge.InternalPrefix + "/cluster/worlds/arena/move"

	e.RequireError(409, edge.CodeVersionGate, "POST", wire.PathWorldMove("arena"), `{"to":2}`, admin...)
	e.RequireError(409, edge.CodeVersionGate, "POST", path, `{"step":"check","to":2}`, peer...)
	code, _, b := e.Do("POST", path, `{"step":"check","to":2,"back":true}`, peer...)
	require.Equal(t, 200, code, "%s", b)
	require.JSONEq(t, `{"unsalted":"gsd/store: not supported by every member: voter n3 reads log 14"}`, string(b), "asked with back: the format's answer in the body")
	e.RequireError(409, edge.CodeVersionGate, "POST", path, `{"step":"export","to":2,"unsalted":"voter n3 reads log 14"}`, peer...)
	require.False(t, f.fenced, "nothing fenced")
	require.False(t, f.target.imported)
	require.Empty(t, f.published)

	f.target.gate = nil
	code, _, b = e.Do("POST", path, `{"step":"check","to":2}`, peer...)
	require.Equal(t, 200, code, "%s", b)
	code, _, b = e.Do("POST", wire.PathWorldMove("arena"), `{"to":2}`, admin...)
	require.Equal(t, 200, code, "%s", b)
	require.JSONEq(t, `{"world":"arena","from":1,"to":2,"seq":5}`, string(b))
	require.True(t, f.fenced)
	require.True(t, f.target.imported)
	require.Equal(t, []string{"arena2"}, f.published)
}

// TestASaltedWorldsMoveAsksARemoteTargetFirst: shard 2's leader is
// another node; its check step's refusal (version_gate, which a log 17
// leader asked with "back" answers only for the copy it holds), or a
// malformed answer from a binary that knows no check step (asked again
// without "back", malformed again), refuses the salted world before its
// fence; any other error (no leader) ends the move before the fence too.
func TestASaltedWorldsMoveAsksARemoteTargetFirst(t *testing.T) {
	t.Parallel()
	var (
		mu     sync.Mutex
		answer wire.ErrorBody
		status int
		steps  []string
	)
	set := func(s int, a wire.ErrorBody) { mu.Lock(); status, answer = s, a; mu.Unlock() }
	n2 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var step wire.MoveStep
		_ = json.NewDecoder(r.Body).Decode(&step)
		mu.Lock()
		defer mu.Unlock()
		steps = append(steps, step.Step)
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(answer)
	}))
	t.Cleanup(n2.Close)
	f := &saltedMoveFake{moveFake: &moveFake{Fake: apitest.NewFake()}, target: &gateTarget{Fake: apitest.NewFake()}, remote: n2.URL}
	e := newEnvFor(t, f, withSecret)
	admin := []string{edge.HeaderClusterKey, testSecret}
	path := wire.PathWorldMove("arena")

	set(409, wire.ErrorBody{Code: edge.CodeVersionGate, Error: "voter n3 reads log 14"})
	code, _, b := e.Do("POST", path, `{"to":2}`, admin...)
	require.Equal(t, 409, code, "%s", b)
	require.Contains(t, string(b), "voter n3 reads log 14")
	set(400, wire.ErrorBody{Code: fsm.CodeMalformed, Error: `move step "check"`})
	code, _, b = e.Do("POST", path, `{"to":2}`, admin...)
	require.Equal(t, 409, code, "%s", b)
	require.Contains(t, string(b), "before log version 15")
	set(503, wire.ErrorBody{Code: edge.CodeNotLeader, Error: "no leader"})
	e.RequireError(503, edge.CodeNotLeader, "POST", path, `{"to":2}`, admin...)
	mu.Lock()
	require.Equal(t, []string{"check", "check", "check", "check"}, steps, "no import asked (malformed: asked again without back)")
	mu.Unlock()
	require.False(t, f.fenced, "nothing fenced")
	require.Empty(t, f.published)
}

// TestAnUnsaltedWorldMovesBetweenOlderBinariesAsBefore: both groups' leaders
// are another node on a binary before log 15, which knows neither the
// needs step, nor the check step, nor the export step's "checked" and
// "unsalted" (it decodes strictly): asked what it reads, it reads log 14,
// whose rules need no more than an export of format 2 (no needs for the
// check); the export is asked again without them, and the move goes on.
func TestAnUnsaltedWorldMovesBetweenOlderBinariesAsBefore(t *testing.T) {
	t.Parallel()
	var (
		mu    sync.Mutex
		steps []string
	)
	old := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if r.Method == http.MethodGet {
			// What the source's leader reads, when it cannot tell the
			// world's needs.
			steps = append(steps, "GET "+r.URL.Path)
			_ = json.NewEncoder(w).Encode(wire.Status{ID: "n2", Versions: wire.Versions{Log: 14, Snapshot: 9, Wire: 1}})
			return
		}
		var step map[string]any
		_ = json.NewDecoder(r.Body).Decode(&step)
		steps = append(steps, fmt.Sprintf("%v %v %v", step["step"], step["checked"] != nil, step["unsalted"] != nil))
		switch {
		case step["step"] == "check" || step["step"] == "needs" || step["checked"] != nil || step["unsalted"] != nil || step["needs"] != nil:
			w.WriteHeader(400)
			_ = json.NewEncoder(w).Encode(wire.ErrorBody{Code: fsm.CodeMalformed, Error: "unknown field or step"})
		case step["step"] == "export":
			_ = json.NewEncoder(w).Encode(wire.WorldExport{Incarnation: 3, Seq: 7, Data: []byte("GSDWRLD\x01")})
		default:
			_ = json.NewEncoder(w).Encode(struct{}{})
		}
	}))
	t.Cleanup(old.Close)
	f := &saltedMoveFake{moveFake: &moveFake{Fake: apitest.NewFake()}, target: &gateTarget{Fake: apitest.NewFake()}, remote: old.URL}
	f.LeaderFlag.Store(false)
	f.SetLeader("n2", old.URL)
	e := newEnvFor(t, f, withSecret)

	code, _, b := e.Do("POST", wire.PathWorldMove("arena"), `{"to":2}`, edge.HeaderClusterKey, testSecret)
	require.Equal(t, 200, code, "%s", b)
	require.JSONEq(t, `{"world":"arena","from":1,"to":2,"seq":7}`, string(b))
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, []string{"needs false false", "GET /v1/status", "check false false", "check false false", "export true true", "export false false", "import false false"}, steps, "no needs (log 14): the check asked with back, then without")
	require.Equal(t, []string{"arena2"}, f.published)
}

// TestAnOlderAdminsExportStepFencesNoSaltedWorld: an admin node on a
// binary before log 15 sends the export step without asking the target
// first ({"step":"export","to":2}, no "checked"): the salted world is
// refused version_gate before its fence (the target would refuse its
// import), so it takes writes; the same step checked goes on, and an
// unsalted world's export is answered as before.
func TestAnOlderAdminsExportStepFencesNoSaltedWorld(t *testing.T) {
	t.Parallel()
	f := &saltedMoveFake{moveFake: &moveFake{Fake: apitest.NewFake()}, target: &gateTarget{Fake: apitest.NewFake(), gate: fmt.Errorf("%w: voter n3 reads log 14", store.ErrVersionGate)}}
	e := newEnvFor(t, f, withSecret)
	peer := []string{edge.HeaderClusterKey, testSecret, edge.HeaderForwarded, "1"}
	path := edge.InternalPrefix + "/cluster/worlds/arena/move"

	code, _, b := e.Do("POST", path, `{"step":"export","to":2}`, peer...)
	require.Equal(t, 409, code, "%s", b)
	require.Contains(t, string(b), edge.CodeVersionGate)
	require.Contains(t, string(b), "call the move through an upgraded node")
	require.False(t, f.fenced, "nothing fenced: the world takes writes")
	require.False(t, f.target.imported)

	code, _, b = e.Do("POST", path, `{"step":"export","to":2,"checked":true}`, peer...)
	require.Equal(t, 200, code, "%s", b)
	require.True(t, f.fenced, "checked, and the target said yes")

	f.fenced = false
	f.plain = true
	code, _, b = e.Do("POST", path, `{"step":"export","to":2}`, peer...)
	require.Equal(t, 200, code, "%s", b)
	require.JSONEq(t, `{"incarnation":3,"seq":5,"data":"R1NEV1JMRAE="}`, string(b), "an unsalted world's export, format 1")
	require.True(t, f.fenced)
}

// TestAnUnsaltedWorldMovesInTheFormatItsTargetReads: the admin route asks
// the target first, and the answer picks the export format of an
// unsalted world: 2 (its data versions kept) when the target reads log
// 15, 1 when its gate refuses. The peer's export step answers format 2
// only when it says the target was checked and reads it.
func TestAnUnsaltedWorldMovesInTheFormatItsTargetReads(t *testing.T) {
	t.Parallel()
	refused := fmt.Errorf("%w: voter n3 reads log 14", store.ErrVersionGate)
	f := &saltedMoveFake{moveFake: &moveFake{Fake: apitest.NewFake()}, target: &gateTarget{Fake: apitest.NewFake(), gate: refused}, plain: true}
	e := newEnvFor(t, f, withSecret)
	admin := []string{edge.HeaderClusterKey, testSecret}
	peer := []string{edge.HeaderClusterKey, testSecret, edge.HeaderForwarded, "1"}
	path := edge.InternalPrefix + "/cluster/worlds/arena/move"

	code, _, b := e.Do("POST", wire.PathWorldMove("arena"), `{"to":2}`, admin...)
	require.Equal(t, 200, code, "%s", b)
	require.True(t, f.target.imported)
	require.Equal(t, []byte{1}, f.formats, "an older target is never handed format 2")
	f.target.gate, f.formats = nil, nil
	code, _, b = e.Do("POST", wire.PathWorldMove("arena"), `{"to":2}`, admin...)
	require.Equal(t, 200, code, "%s", b)
	require.Equal(t, []byte{fsm.ExportFormat}, f.formats)

	for step, want := range map[string]string{
		`{"step":"export","to":2,"checked":true}`:                                    "R1NEV1JMRAI=", // GSDWRLD\x02
		`{"step":"export","to":2,"checked":true,"unsalted":"voter n3 reads log 14"}`: "R1NEV1JMRAE=", // GSDWRLD\x01
		`{"step":"export","to":2}`:                                                   "R1NEV1JMRAE=",
	} {
		code, _, b := e.Do("POST", path, step, peer...)
		require.Equal(t, 200, code, "%s", b)
		require.JSONEq(t, `{"incarnation":3,"seq":5,"data":"`+want+`"}`, string(b), step)
	}
}

// TestALog17TargetAnswersTheFormatInTheCheckBody: shard 2's leader is
// another node on this release: asked with "back", it answers the
// format's refusal in the body ({"unsalted":...}) and the admin takes it
// as the format's answer, asking nothing again: a salted world is
// refused version_gate before its fence, an unsalted one moves in
// format 1.
func TestALog17TargetAnswersTheFormatInTheCheckBody(t *testing.T) {
	t.Parallel()
	var (
		mu    sync.Mutex
		steps []string
	)
	n2 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var step wire.MoveStep
		_ = json.NewDecoder(r.Body).Decode(&step)
		mu.Lock()
		steps = append(steps, fmt.Sprintf("%s %v", step.Step, step.Back))
		mu.Unlock()
		if step.Step == wire.MoveStepCheck {
			_ = json.NewEncoder(w).Encode(wire.MoveCheck{Unsalted: "voter n3 reads log 14"})
			return
		}
		_ = json.NewEncoder(w).Encode(struct{}{})
	}))
	t.Cleanup(n2.Close)
	f := &saltedMoveFake{moveFake: &moveFake{Fake: apitest.NewFake()}, target: &gateTarget{Fake: apitest.NewFake()}, remote: n2.URL}
	e := newEnvFor(t, f, withSecret)
	admin := []string{edge.HeaderClusterKey, testSecret}

	code, _, b := e.Do("POST", wire.PathWorldMove("arena"), `{"to":2}`, admin...)
	require.Equal(t, 409, code, "%s", b)
	require.Contains(t, string(b), "voter n3 reads log 14")
	require.False(t, f.fenced, "nothing fenced")

	f.plain = true
	code, _, b = e.Do("POST", wire.PathWorldMove("arena"), `{"to":2}`, admin...)
	require.Equal(t, 200, code, "%s", b)
	require.True(t, f.fenced)
	require.Equal(t, []byte{1}, f.formats, "format 1: the target would not read 2")
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, []string{"check true", "check true", "import false"}, steps)
}
