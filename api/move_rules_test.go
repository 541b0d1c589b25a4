package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/api/internal/apitest"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/store"
	"github.com/gsd-dev/gsd/wire"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

// shardNode is one node of an in-process two-shard cluster: its store is
// the one-node group of shard own, which it leads; the other shard's
// leader is the node at other (its HTTP address). Its map places every
// world on shard 1.
type shardNode struct {
	*store.Store
	own       uint64
	other     string
	published []string
}

func (n *shardNode) ShardOf(string) (uint64, error) { return 1, nil }

func (n *shardNode) GroupRoute(g uint64) (edge.Route, error) {
	switch {
	case g == n.own:
		return edge.Route{GroupID: fmt.Sprint(g), Group: n.Store}, nil
	case g == 1 || g == 2:
		return edge.Route{GroupID: fmt.Sprint(g), Node: fmt.Sprint("n", g), Addr: n.other}, nil
	}
	return edge.Route{}, fmt.Errorf("%w: shard %d", fsm.ErrNotFound, g)
}

func (n *shardNode) PublishWorld(_ context.Context, world string, shard uint64) error {
	n.published = append(n.published, fmt.Sprint(world, shard))
	return nil
}

// twoShardNodes starts n1, leading shard 1 on a current binary, and n2,
// leading shard 2, whose only voter reads v; both serve the API with the
// cluster secret. It returns n1's node and env and n2's store.
func twoShardNodes(t *testing.T, v fsm.Versions) (*shardNode, *testEnv, *store.Store) {
	t.Helper()
	ln1, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	reg1, reg2 := prometheus.NewRegistry(), prometheus.NewRegistry()
	st1, _ := apitest.StartStoreOn(t, "n1", true, ln1.Addr().String(), reg1)
	st2, _ := apitest.StartStoreWith(t, "n2", true, ln2.Addr().String(), reg2, func(c *store.Config) { c.Versions = v })
	n1 := &shardNode{Store: st1, own: 1, other: ln2.Addr().String()}
	n2 := &shardNode{Store: st2, own: 2, other: ln1.Addr().String()}
	e1 := newEnvReg(t, n1, reg1, ln1, withSecret)
	newEnvReg(t, n2, reg2, ln2, withSecret)
	require.Eventually(t, func() bool { return st1.LeaderReady() && st2.LeaderReady() }, 10*time.Second, 10*time.Millisecond)
	return n1, e1, st2
}

// quantumRules set a quantum on float field x: a replica needs log 16 to
// read them.
var quantumRules = fsm.Rules{Fields: map[string]fsm.FieldRule{"x": {Type: fsm.KindFloat, Policy: fsm.PolicyAuthoritative}},
	Schema: fsm.Schema{Access: map[string]fsm.FieldAccess{"x": {Quantum: 0.5}}}}

// TestACrossNodeMoveOfAQuantumWorldToALog15ShardFencesNothing (issue 13):
// shard 2's leader is another node, whose voter reads log 15, so it
// cannot import a world whose rules set a quantum (log 16). The admin
// route's check at that node must refuse the move with version_gate
// before the fence: the world takes writes at its old home and nothing
// is imported or published. Before the check step carried the world's
// needs, it passed, the source fenced, the import was refused, and the
// world refused writes on both shards. A world without a quantum moves
// there as before.
func TestACrossNodeMoveOfAQuantumWorldToALog15ShardFencesNothing(t *testing.T) {
	t.Parallel()
	n1, e1, st2 := twoShardNodes(t, fsm.Versions{Log: 15, Snapshot: 10, Wire: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin := []string{edge.HeaderClusterKey, testSecret}
	require.NoError(t, n1.CreateWorld(ctx, "q", quantumRules))
	xBody := func(seq int) string {
		return fmt.Sprintf(`{"player":"p1","seq":%d,"ops":[{"op":"set","entity":"e1","field":"x","value":%d.25}]}`, seq, seq)
	}
	code, _, b := e1.Do("POST", "/v1/worlds/q/actions", xBody(1), admin...)
	require.Equal(t, 200, code, "%s", b)

	code, _, b = e1.Do("POST", wire.PathWorldMove("q"), `{"to":2}`, admin...)
	info, err := n1.World("q")
	require.NoError(t, err)
	require.Nil(t, info.Moved, "nothing fenced: the world keeps its home (answer %s)", b)
	require.Equal(t, 409, code, "%s", b)
	require.Contains(t, string(b), edge.CodeVersionGate)
	require.Contains(t, string(b), "nothing fenced")
	_, err = st2.World("q")
	require.ErrorIs(t, err, fsm.ErrUnknownWorld, "nothing imported")
	require.Empty(t, n1.published)
	code, _, b = e1.Do("POST", "/v1/worlds/q/actions", xBody(2), admin...)
	require.Equal(t, 200, code, "the world takes writes at its old home: %s", b)

	require.NoError(t, n1.CreateWorld(ctx, "plain", fsm.Rules{}))
	code, _, b = e1.Do("POST", "/v1/worlds/plain/actions", incrBody, admin...)
	require.Equal(t, 200, code, "%s", b)
	code, _, b = e1.Do("POST", wire.PathWorldMove("plain"), `{"to":2}`, admin...)
	require.Equal(t, 200, code, "%s", b)
	require.JSONEq(t, `{"world":"plain","from":1,"to":2,"seq":1}`, string(b))
	got, err := st2.World("plain")
	require.NoError(t, err)
	require.Equal(t, uint64(1), got.Seq)
	require.Equal(t, []string{"plain2"}, n1.published)
}

// log16 is what the import of a quantum world needs (shard.MoveNeeds).
var log16 = fsm.Versions{Log: 16, Snapshot: 10, Wire: 1}

// quantumMoveFake is a moveFake whose one group holds a world whose rules
// set a quantum (not salted), and whose shard 2 is target.
func quantumMoveFake(target *gateTarget) *saltedMoveFake {
	return &saltedMoveFake{moveFake: &moveFake{Fake: apitest.NewFake()}, target: target, plain: true, rules: quantumRules}
}

// TestAQuantumWorldsMoveAsksTheLocalTargetForItsRulesNeeds: shard 2's
// leader is this node: its gate is asked for what the world's rules need
// before the fence, and its refusal ends the move with nothing fenced;
// once it reads them the world moves, in export format 2.
func TestAQuantumWorldsMoveAsksTheLocalTargetForItsRulesNeeds(t *testing.T) {
	t.Parallel()
	f := quantumMoveFake(&gateTarget{Fake: apitest.NewFake(), rulesGate: fmt.Errorf("%w: voter n3 reads log 15", store.ErrVersionGate)})
	e := newEnvFor(t, f, withSecret)
	admin := []string{edge.HeaderClusterKey, testSecret}

	code, _, b := e.Do("POST", wire.PathWorldMove("arena"), `{"to":2}`, admin...)
	require.Equal(t, 409, code, "%s", b)
	require.Contains(t, string(b), edge.CodeVersionGate)
	require.Contains(t, string(b), "voter n3 reads log 15")
	require.Contains(t, string(b), "nothing fenced")
	require.False(t, f.fenced, "nothing fenced")
	require.False(t, f.target.imported)
	require.Empty(t, f.published)
	require.Equal(t, []fsm.Versions{log16}, f.target.asked)

	f.target.rulesGate = nil
	code, _, b = e.Do("POST", wire.PathWorldMove("arena"), `{"to":2}`, admin...)
	require.Equal(t, 200, code, "%s", b)
	require.True(t, f.fenced)
	require.True(t, f.target.imported)
	require.Equal(t, []byte{fsm.ExportFormat}, f.formats)
	require.Equal(t, []string{"arena2"}, f.published)
}

// TestAQuantumWorldsMoveCarriesItsNeedsToARemoteTarget: shard 2's leader
// is another node. The check step carries what the world's rules need;
// the target's refusal (version_gate), or a malformed answer from a
// binary that does not know the step's needs, ends the move before the
// fence: neither falls back to format 1 as for a world without needs,
// which would fence a world the target cannot import.
func TestAQuantumWorldsMoveCarriesItsNeedsToARemoteTarget(t *testing.T) {
	t.Parallel()
	var (
		mu     sync.Mutex
		answer wire.ErrorBody
		status int
		steps  []wire.MoveStep
	)
	set := func(s int, a wire.ErrorBody) { mu.Lock(); status, answer = s, a; mu.Unlock() }
	n2 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var step wire.MoveStep
		_ = json.NewDecoder(r.Body).Decode(&step)
		mu.Lock()
		defer mu.Unlock()
		steps = append(steps, step)
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(answer)
	}))
	t.Cleanup(n2.Close)
	f := quantumMoveFake(&gateTarget{Fake: apitest.NewFake()})
	f.remote = n2.URL
	e := newEnvFor(t, f, withSecret)
	admin := []string{edge.HeaderClusterKey, testSecret}
	path := wire.PathWorldMove("arena")

	set(409, wire.ErrorBody{Code: edge.CodeVersionGate, Error: "move arena: its rules need log 16 at the target: voter n3 reads log 15"})
	code, _, b := e.Do("POST", path, `{"to":2}`, admin...)
	require.Equal(t, 409, code, "%s", b)
	require.Contains(t, string(b), edge.CodeVersionGate)
	require.Contains(t, string(b), "voter n3 reads log 15")
	set(400, wire.ErrorBody{Code: fsm.CodeMalformed, Error: `json: unknown field "needs"`})
	code, _, b = e.Do("POST", path, `{"to":2}`, admin...)
	require.Equal(t, 409, code, "%s", b)
	require.Contains(t, string(b), edge.CodeVersionGate)
	require.Contains(t, string(b), "cannot check that its voters read them")
	require.Contains(t, string(b), "nothing fenced")
	mu.Lock()
	require.Len(t, steps, 2, "no export, no import asked")
	for _, s := range steps {
		require.Equal(t, wire.MoveStepCheck, s.Step)
		require.Equal(t, &log16, s.Needs)
	}
	mu.Unlock()
	require.False(t, f.fenced, "nothing fenced")
	require.Empty(t, f.published)
}

// TestAnExportStepFencesNoQuantumWorldItsTargetWasNotCheckedFor: the
// peer's export step refuses, before the fence, a world whose rules need
// more than its needs say the target was checked for: none (an admin
// node without the check's needs) or less (the rules changed since);
// checked for them, it fences and exports; a world fenced already (a
// retry) exports all the same. Its check step asks the target's gate for
// the step's needs.
func TestAnExportStepFencesNoQuantumWorldItsTargetWasNotCheckedFor(t *testing.T) {
	t.Parallel()
	f := quantumMoveFake(&gateTarget{Fake: apitest.NewFake(), rulesGate: fmt.Errorf("%w: voter n3 reads log 15", store.ErrVersionGate)})
	e := newEnvFor(t, f, withSecret)
	peer := []string{edge.HeaderClusterKey, testSecret, edge.HeaderForwarded, "1"}
	path := edge.InternalPrefix + "/cluster/worlds/arena/move"

	for step, why := range map[string]string{
		`{"step":"export","to":2,"checked":true}`:                                           "call the move through an upgraded node",
		`{"step":"export","to":2,"checked":true,"needs":{"log":11,"snapshot":10,"wire":1}}`: "call the move again",
	} {
		code, _, b := e.Do("POST", path, step, peer...)
		require.Equal(t, 409, code, "%s", b)
		require.Contains(t, string(b), edge.CodeVersionGate, step)
		require.Contains(t, string(b), why, step)
		require.False(t, f.fenced, "nothing fenced: %s", step)
	}
	code, _, b := e.Do("POST", path, `{"step":"export","to":2,"checked":true,"needs":{"log":16,"snapshot":10,"wire":1}}`, peer...)
	require.Equal(t, 200, code, "%s", b)
	require.True(t, f.fenced)
	code, _, b = e.Do("POST", path, `{"step":"export","to":2,"checked":true}`, peer...)
	require.Equal(t, 200, code, "a retry of a world fenced already: %s", b)

	e.RequireError(409, edge.CodeVersionGate, "POST", path, `{"step":"check","to":2,"needs":{"log":16,"snapshot":10,"wire":1}}`, peer...)
	require.Equal(t, []fsm.Versions{log16}, f.target.asked)
	code, _, b = e.Do("POST", path, `{"step":"check","to":2}`, peer...)
	require.Equal(t, 200, code, "no needs, no rules asked: %s", b)
	require.Len(t, f.target.asked, 1)
}

// TestAQuantumWorldMovesThroughASourceThatDoesNotKnowTheNeeds: both
// groups' leaders are another node, which reads the world's rules out
// (GET /v1/worlds/{world}), passes the check step with its needs, but
// answers the export step with needs malformed (a binary before them):
// the target was checked, so the export is asked again without them
// (still checked) and the move completes.
func TestAQuantumWorldMovesThroughASourceThatDoesNotKnowTheNeeds(t *testing.T) {
	t.Parallel()
	var (
		mu    sync.Mutex
		steps []string
	)
	rules, err := json.Marshal(quantumRules)
	require.NoError(t, err)
	n2 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if r.Method == http.MethodGet {
			steps = append(steps, "GET "+r.URL.Path)
			fmt.Fprintf(w, `{"id":"arena","seq":7,"rules":%s}`, rules)
			return
		}
		var step wire.MoveStep
		_ = json.NewDecoder(r.Body).Decode(&step)
		steps = append(steps, fmt.Sprintf("%s %v %v", step.Step, step.Checked, step.Needs != nil))
		switch {
		case step.Step == wire.MoveStepExport && step.Needs != nil:
			w.WriteHeader(400)
			_ = json.NewEncoder(w).Encode(wire.ErrorBody{Code: fsm.CodeMalformed, Error: `json: unknown field "needs"`})
		case step.Step == wire.MoveStepExport:
			_ = json.NewEncoder(w).Encode(wire.WorldExport{Incarnation: 3, Seq: 7, Data: []byte("GSDWRLD\x02")})
		default:
			_ = json.NewEncoder(w).Encode(struct{}{})
		}
	}))
	t.Cleanup(n2.Close)
	f := quantumMoveFake(&gateTarget{Fake: apitest.NewFake()})
	f.remote = n2.URL
	f.LeaderFlag.Store(false)
	f.SetLeader("n2", n2.URL)
	e := newEnvFor(t, f, withSecret)

	code, _, b := e.Do("POST", wire.PathWorldMove("arena"), `{"to":2}`, edge.HeaderClusterKey, testSecret)
	require.Equal(t, 200, code, "%s", b)
	require.JSONEq(t, `{"world":"arena","from":1,"to":2,"seq":7}`, string(b))
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, []string{"GET /v1/worlds/arena", "check false true", "export true true", "export true false", "import false false"}, steps)
	require.Equal(t, []string{"arena2"}, f.published)
}

// TestAMoveWhoseWorldsRulesCannotBeReadFencesNothing: the world's group's
// leader is another node that answers the rules' read with an error: the
// move ends before its check and its fence. A world unknown there goes
// on to the check (the fence would tell).
func TestAMoveWhoseWorldsRulesCannotBeReadFencesNothing(t *testing.T) {
	t.Parallel()
	var (
		mu     sync.Mutex
		status int
		code   string
		posts  int
	)
	n2 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if r.Method != http.MethodGet {
			posts++
		}
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(wire.ErrorBody{Code: code, Error: code})
	}))
	t.Cleanup(n2.Close)
	f := quantumMoveFake(&gateTarget{Fake: apitest.NewFake()})
	f.remote = n2.URL
	f.LeaderFlag.Store(false)
	f.SetLeader("n2", n2.URL)
	e := newEnvFor(t, f, withSecret)
	admin := []string{edge.HeaderClusterKey, testSecret}

	status, code = 503, edge.CodeNotLeader
	e.RequireError(503, edge.CodeNotLeader, "POST", wire.PathWorldMove("arena"), `{"to":2}`, admin...)
	mu.Lock()
	require.Zero(t, posts, "no step asked")
	status, code = 404, fsm.CodeUnknownWorld
	mu.Unlock()
	e.RequireError(404, fsm.CodeUnknownWorld, "POST", wire.PathWorldMove("arena"), `{"to":2}`, admin...)
	mu.Lock()
	require.Equal(t, 1, posts, "past the rules' read: the check step asked (and refused here)")
	mu.Unlock()
	require.Empty(t, f.published)
}
