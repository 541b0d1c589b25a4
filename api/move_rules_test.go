package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/api/internal/apitest"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/shard"
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
	own   uint64
	other string
	// home, when set, is where this node's router finds every world's
	// group's leader (n1's HTTP address, or a proxy in front of it): the
	// world's home is another node.
	home      string
	published []string
}

func (n *shardNode) IsLeader() bool { return n.home == "" && n.Store.IsLeader() }

func (n *shardNode) Leader() (string, string) {
	if n.home != "" {
		return "n1", n.home
	}
	return n.Store.Leader()
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
	n1, e1, n2, _ := twoShardNodesAt(t, v, nil)
	return n1, e1, n2.Store
}

// twoShardNodesAt is twoShardNodes, also returning n2's node and env;
// with home set, n2's router finds every world's group's leader at
// home(n1's HTTP address) (n1, or a proxy in front of it): a move called
// on n2 has its source on another node and its target here.
func twoShardNodesAt(t *testing.T, v fsm.Versions, home func(n1 string) string) (*shardNode, *testEnv, *shardNode, *testEnv) {
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
	if home != nil {
		n2.home = home(ln1.Addr().String())
	}
	e1 := newEnvReg(t, n1, reg1, ln1, withSecret)
	e2 := newEnvReg(t, n2, reg2, ln2, withSecret)
	require.Eventually(t, func() bool { return st1.LeaderReady() && st2.LeaderReady() }, 10*time.Second, 10*time.Millisecond)
	return n1, e1, n2, e2
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

// TestThePublicWorldRouteCannotTellAQuantumWorldsMoveNeeds documents why
// a move asks the world's home's leader for its needs (the needs step)
// rather than reading its rules through GET /v1/worlds/{world}: that
// route answers the rules without the spectator keys (fsm.Rules.Wire), a
// quantum among them, so the needs read from its answer come out zero.
func TestThePublicWorldRouteCannotTellAQuantumWorldsMoveNeeds(t *testing.T) {
	t.Parallel()
	n1, e1, _ := twoShardNodes(t, fsm.Versions{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, n1.CreateWorld(ctx, "q", quantumRules))
	info, err := n1.World("q")
	require.NoError(t, err)
	require.Equal(t, log16, shard.MoveNeeds(info.Rules), "the whole rules need log 16")

	code, _, b := e1.Do("GET", "/v1/worlds/q", "", edge.HeaderClusterKey, testSecret)
	require.Equal(t, 200, code, "%s", b)
	var got struct { // wire.World's rules, as fsm reads them
		Rules json.RawMessage `json:"rules"`
	}
	require.NoError(t, json.Unmarshal(b, &got))
	var rules fsm.Rules
	require.NoError(t, rules.UnmarshalJSON(got.Rules))
	require.Zero(t, shard.MoveNeeds(rules), "the public route's rules lose the quantum")
}

// TestAQuantumWorldMovesFromAnotherNodesShardToALog16Target: the move is
// called on n2, which leads the target shard (every voter reads log 16);
// the world's shard is led by n1. The world's needs come from n1 (the
// needs step), the target is checked for them, n1's export step finds
// them covered, and the world moves. Before the needs step, n2 read the
// rules through GET /v1/worlds/q, lost the quantum, sent no needs, and
// n1 refused the export (409 version_gate "call the move through an
// upgraded node"): a move that worked on main failed unless called on
// the source's leader.
func TestAQuantumWorldMovesFromAnotherNodesShardToALog16Target(t *testing.T) {
	t.Parallel()
	n1, e1, n2, e2 := twoShardNodesAt(t, fsm.Versions{}, func(n1 string) string { return n1 })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin := []string{edge.HeaderClusterKey, testSecret}
	require.NoError(t, n1.CreateWorld(ctx, "q", quantumRules))
	code, _, b := e1.Do("POST", "/v1/worlds/q/actions", `{"player":"p1","seq":1,"ops":[{"op":"set","entity":"e1","field":"x","value":1.25}]}`, admin...)
	require.Equal(t, 200, code, "%s", b)

	code, _, b = e2.Do("POST", wire.PathWorldMove("q"), `{"to":2}`, admin...)
	require.Equal(t, 200, code, "%s", b)
	require.JSONEq(t, `{"world":"q","from":1,"to":2,"seq":1}`, string(b))
	got, err := n2.World("q")
	require.NoError(t, err)
	require.Equal(t, uint64(1), got.Seq)
	require.Equal(t, quantumRules.Schema.Access["x"].Quantum, got.Rules.Schema.Access["x"].Quantum, "the whole rules moved")
	require.Equal(t, []string{"q2"}, n2.published)
}

// olderSource is a proxy in front of n1 that answers as a node on an
// older log 16 binary would (before the needs step and CheckedRules):
// the needs step, and an export step with needs, 400 malformed; an export
// step without needs fences as that binary did, without holding the
// world's rules against anything (here: n1 told the needs covered).
// Everything else goes to n1 unchanged.
func olderSource(t *testing.T, n1 string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		require.NoError(t, err)
		if r.Method == http.MethodPost {
			var step wire.MoveStep
			require.NoError(t, json.Unmarshal(body, &step))
			switch {
			case step.Step == wire.MoveStepNeeds || step.Needs != nil:
				w.WriteHeader(400)
				_ = json.NewEncoder(w).Encode(wire.ErrorBody{Code: fsm.CodeMalformed, Error: "unknown step or field"})
				return
			case step.Step == wire.MoveStepExport:
				step.Needs = &log16
				body, err = json.Marshal(step)
				require.NoError(t, err)
			}
		}
		req, err := http.NewRequestWithContext(r.Context(), r.Method, "http://"+n1+r.URL.Path, bytes.NewReader(body))
		require.NoError(t, err)
		req.Header = r.Header.Clone()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			w.WriteHeader(502)
			return
		}
		defer resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestAQuantumWorldsMoveFromAnOlderSourceToALog15TargetFencesNothing: a
// rolling upgrade. The world's shard is led by n1 on an older log 16
// binary (olderSource), which cannot tell the world's needs and fences
// without CheckedRules; the move is called on n2, which leads the target
// shard, whose voter reads log 15. n1 reads log 16, so the world may need
// it: the target's gate is asked for it and refuses, and nothing is
// fenced. Before, n2 read the rules through GET /v1/worlds/q (quantum
// lost), checked the target for format 2 only (log 15: passed), n1
// fenced, the import was refused, and the world refused writes on both
// shards.
func TestAQuantumWorldsMoveFromAnOlderSourceToALog15TargetFencesNothing(t *testing.T) {
	t.Parallel()
	n1, e1, n2, e2 := twoShardNodesAt(t, fsm.Versions{Log: 15, Snapshot: 10, Wire: 1}, func(n1 string) string { return olderSource(t, n1) })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin := []string{edge.HeaderClusterKey, testSecret}
	require.NoError(t, n1.CreateWorld(ctx, "q", quantumRules))

	code, _, b := e2.Do("POST", wire.PathWorldMove("q"), `{"to":2}`, admin...)
	info, err := n1.World("q")
	require.NoError(t, err)
	require.Nil(t, info.Moved, "nothing fenced (answer %s)", b)
	require.Equal(t, 409, code, "%s", b)
	require.Contains(t, string(b), edge.CodeVersionGate)
	require.Contains(t, string(b), "cannot tell what the world's rules need")
	require.Contains(t, string(b), "nothing fenced by this call")
	_, err = n2.World("q")
	require.ErrorIs(t, err, fsm.ErrUnknownWorld, "nothing imported")
	require.Empty(t, n2.published)
	code, _, b = e1.Do("POST", "/v1/worlds/q/actions", `{"player":"p1","seq":1,"ops":[{"op":"set","entity":"e1","field":"x","value":1.25}]}`, admin...)
	require.Equal(t, 200, code, "the world takes writes at its old home: %s", b)
}

// TestAMoveRetriedAfterAnEarlierFenceSaysSo: an earlier attempt, through
// an admin node that did not check the world's rules, fenced the quantum
// world towards shard 2, whose voter reads log 15, and its import was
// refused. A retry through n1 is refused at the check (version_gate), and
// says the world is fenced already, never "nothing fenced"; through n2,
// whose source is n1 over the needs step, too.
func TestAMoveRetriedAfterAnEarlierFenceSaysSo(t *testing.T) {
	t.Parallel()
	n1, e1, _, e2 := twoShardNodesAt(t, fsm.Versions{Log: 15, Snapshot: 10, Wire: 1}, func(n1 string) string { return n1 })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin := []string{edge.HeaderClusterKey, testSecret}
	require.NoError(t, n1.CreateWorld(ctx, "q", quantumRules))
	code, _, b := e1.Do("POST", "/v1/worlds/q/actions", `{"player":"p1","seq":1,"ops":[{"op":"set","entity":"e1","field":"x","value":1.25}]}`, admin...)
	require.Equal(t, 200, code, "%s", b)
	info, err := n1.World("q")
	require.NoError(t, err)
	_, err = n1.MoveWorld(ctx, "q", 2, info.Incarnation)
	require.NoError(t, err)

	for _, e := range []*testEnv{e1, e2} {
		code, _, b = e.Do("POST", wire.PathWorldMove("q"), `{"to":2}`, admin...)
		require.Equal(t, 409, code, "%s", b)
		require.Contains(t, string(b), edge.CodeVersionGate)
		require.Contains(t, string(b), "already fenced towards shard 2 at seq 1")
		require.NotContains(t, string(b), "nothing fenced")
	}
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

// TestAQuantumWorldMovesThroughASourceThatDoesNotKnowTheNeeds: the
// world's group's leader is another node on an older binary (log 16,
// before the needs step): it answers the needs step malformed and, asked
// what it reads (GET /v1/status, wire.Status as a real node sends it),
// log 16, so the world may need log 16 at the target: the target (a
// third node) is checked for that and passes; the source answers the
// export step with needs malformed, is asked again without them (still
// checked), and the move completes.
func TestAQuantumWorldMovesThroughASourceThatDoesNotKnowTheNeeds(t *testing.T) {
	t.Parallel()
	var (
		mu    sync.Mutex
		steps []string
	)
	serve := func(node string, answer func(w http.ResponseWriter, step wire.MoveStep)) *httptest.Server {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			defer mu.Unlock()
			if r.Method == http.MethodGet {
				steps = append(steps, node+" GET "+r.URL.Path)
				_ = json.NewEncoder(w).Encode(wire.Status{ID: node, State: "Leader", Versions: log16})
				return
			}
			var step wire.MoveStep
			_ = json.NewDecoder(r.Body).Decode(&step)
			steps = append(steps, fmt.Sprintf("%s %s %v %v", node, step.Step, step.Checked, step.Needs))
			answer(w, step)
		}))
		t.Cleanup(srv.Close)
		return srv
	}
	malformed := func(w http.ResponseWriter, msg string) {
		w.WriteHeader(400)
		_ = json.NewEncoder(w).Encode(wire.ErrorBody{Code: fsm.CodeMalformed, Error: msg})
	}
	src := serve("n1", func(w http.ResponseWriter, step wire.MoveStep) {
		switch {
		case step.Step == wire.MoveStepNeeds:
			malformed(w, `move step "needs" (want "export", "import" or "check")`)
		case step.Needs != nil:
			malformed(w, `json: unknown field "needs"`)
		default:
			_ = json.NewEncoder(w).Encode(wire.WorldExport{Incarnation: 3, Seq: 7, Data: []byte("GSDWRLD\x02")})
		}
	})
	dst := serve("n2", func(w http.ResponseWriter, _ wire.MoveStep) { _ = json.NewEncoder(w).Encode(struct{}{}) })
	f := quantumMoveFake(&gateTarget{Fake: apitest.NewFake()})
	f.remote = dst.URL
	f.LeaderFlag.Store(false)
	f.SetLeader("n1", src.URL)
	e := newEnvFor(t, f, withSecret)

	code, _, b := e.Do("POST", wire.PathWorldMove("arena"), `{"to":2}`, edge.HeaderClusterKey, testSecret)
	require.Equal(t, 200, code, "%s", b)
	require.JSONEq(t, `{"world":"arena","from":1,"to":2,"seq":7}`, string(b))
	mu.Lock()
	defer mu.Unlock()
	need := fmt.Sprint(&log16)
	require.Equal(t, []string{"n1 needs false <nil>", "n1 GET /v1/status", "n2 check false " + need, "n1 export true " + need, "n1 export true <nil>", "n2 import false <nil>"}, steps)
	require.Equal(t, []string{"arena2"}, f.published)
}

// TestAMoveWhoseWorldsNeedsCannotBeReadFencesNothing: the world's
// group's leader is another node that answers the needs step with an
// error: the move ends before its check and its fence. A world unknown
// there goes on to the check (the fence would tell). One on an older
// binary that cannot tell, nor say what it reads, ends the move too.
func TestAMoveWhoseWorldsNeedsCannotBeReadFencesNothing(t *testing.T) {
	t.Parallel()
	var (
		mu     sync.Mutex
		status int
		code   string
		others int
	)
	n2 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		var step wire.MoveStep
		_ = json.NewDecoder(r.Body).Decode(&step)
		if r.Method == http.MethodGet || step.Step != wire.MoveStepNeeds {
			others++
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
	require.Zero(t, others, "no other step asked")
	status, code = 404, fsm.CodeUnknownWorld
	mu.Unlock()
	e.RequireError(404, fsm.CodeUnknownWorld, "POST", wire.PathWorldMove("arena"), `{"to":2}`, admin...)
	mu.Lock()
	require.Equal(t, 1, others, "past the needs step: the check step asked (and refused here)")
	status, code = 400, fsm.CodeMalformed
	others = 0
	mu.Unlock()
	code2, _, b := e.Do("POST", wire.PathWorldMove("arena"), `{"to":2}`, admin...)
	require.Equal(t, 400, code2, "%s", b)
	require.Contains(t, string(b), "cannot tell what the world's rules need")
	mu.Lock()
	require.Equal(t, 1, others, "asked what it reads (refused here), no check step")
	mu.Unlock()
	require.False(t, f.fenced)
	require.Empty(t, f.published)
}

// TestAMoveThroughASourceBeforeMovesAndReportsAsksWhatItReads: the
// world's group's leader answers the needs step 404 as a binary without
// the move route does (net/http's plain 404), and its status reports no
// versions (a binary from before the version gate: the baseline, log
// 1): its group holds no rules beyond an export's, so the check carries
// no needs and the move goes on as before.
func TestAMoveThroughASourceBeforeMovesAndReportsAsksWhatItReads(t *testing.T) {
	t.Parallel()
	var (
		mu    sync.Mutex
		steps []string
	)
	n2 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if r.Method == http.MethodGet {
			steps = append(steps, "GET "+r.URL.Path)
			_, _ = io.WriteString(w, `{"id":"n2","state":"Leader"}`)
			return
		}
		var step wire.MoveStep
		_ = json.NewDecoder(r.Body).Decode(&step)
		steps = append(steps, fmt.Sprintf("%s %v", step.Step, step.Needs))
		switch step.Step {
		case wire.MoveStepNeeds:
			http.NotFound(w, r)
		case wire.MoveStepExport:
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
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, []string{"needs <nil>", "GET /v1/status", "check <nil>", "export <nil>", "import <nil>"}, steps)
}
