package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/api/internal/apitest"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/store"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// strictTarget is shard 2's leader on another node, on a binary that
// knows back and/or needs: it answers a step carrying a key it does not
// know 400 malformed, as a strict decoder does, and records the keys of
// every check step.
type strictTarget struct {
	back, needs bool // the keys its binary knows
	// refuse, when set, is its answer to a check it decodes (status 409).
	refuse *wire.ErrorBody
	mu     sync.Mutex
	checks []string
}

func (s *strictTarget) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var step map[string]any
	_ = json.NewDecoder(r.Body).Decode(&step)
	_, hasBack := step["back"]
	_, hasNeeds := step["needs"]
	if step["step"] == wire.MoveStepCheck {
		s.mu.Lock()
		s.checks = append(s.checks, fmt.Sprintf("back=%v needs=%v", hasBack, hasNeeds))
		s.mu.Unlock()
	}
	if (hasBack && !s.back) || (hasNeeds && !s.needs) {
		w.WriteHeader(400)
		_ = json.NewEncoder(w).Encode(wire.ErrorBody{Code: fsm.CodeMalformed, Error: "json: unknown field"})
		return
	}
	if s.refuse != nil && step["step"] == wire.MoveStepCheck {
		w.WriteHeader(409)
		_ = json.NewEncoder(w).Encode(s.refuse)
		return
	}
	_ = json.NewEncoder(w).Encode(struct{}{}) // {}: a MoveCheck with nothing to say, or an import's answer
}

func (s *strictTarget) asked() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.checks...)
}

// TestACheckCarriesBackAndNeedsAndIsNotAskedAgainWithoutThem (the merge
// of moveback14 and spec13, shard/DESIGN.md "A check with both keys"):
// the admin route sends one check with back, and needs for a world that
// has them. A target leader that answers malformed is asked again
// without back only when the world has no needs; a world with needs is
// refused version_gate with nothing fenced, whichever key the target
// lacks, since a target that cannot check the needs must not receive
// the world. Each row is a binary's strict decoding.
func TestACheckCarriesBackAndNeedsAndIsNotAskedAgainWithoutThem(t *testing.T) {
	t.Parallel()
	admin := []string{edge.HeaderClusterKey, testSecret}
	for _, c := range []struct {
		name        string
		back, needs bool
		plain       []string // the checks a world without needs gets (it moves on every row)
		quantumOK   bool     // whether a world with needs moves
	}{
		{"this release", true, true, []string{"back=true needs=false"}, true},
		{"log 17 before needs", true, false, []string{"back=true needs=false"}, false},
		{"log 15 or 16", false, false, []string{"back=true needs=false", "back=false needs=false"}, false},
		{"needs without back", false, true, []string{"back=true needs=false", "back=false needs=false"}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			target := &strictTarget{back: c.back, needs: c.needs}
			srv := httptest.NewServer(target)
			t.Cleanup(srv.Close)

			f := quantumMoveFake(&gateTarget{Fake: apitest.NewFake()})
			f.remote = srv.URL
			e := newEnvFor(t, f, withSecret)
			code, _, b := e.Do("POST", wire.PathWorldMove("arena"), `{"to":2}`, admin...)
			require.Equal(t, []string{"back=true needs=true"}, target.asked(), "one check with both keys, never asked again")
			if c.quantumOK {
				require.Equal(t, 200, code, "%s", b)
				require.True(t, f.fenced)
				require.Equal(t, []string{"arena2"}, f.published)
			} else {
				require.Equal(t, 409, code, "%s", b)
				require.Contains(t, string(b), edge.CodeVersionGate)
				require.Contains(t, string(b), "cannot check that its voters read them")
				require.Contains(t, string(b), "nothing fenced")
				require.False(t, f.fenced, "nothing fenced")
				require.Empty(t, f.published)
			}

			plainTarget := &strictTarget{back: c.back, needs: c.needs}
			plainSrv := httptest.NewServer(plainTarget)
			t.Cleanup(plainSrv.Close)
			p := &saltedMoveFake{moveFake: &moveFake{Fake: apitest.NewFake()}, target: &gateTarget{Fake: apitest.NewFake()}, remote: plainSrv.URL, plain: true}
			pe := newEnvFor(t, p, withSecret)
			code, _, b = pe.Do("POST", wire.PathWorldMove("arena"), `{"to":2}`, admin...)
			require.Equal(t, 200, code, "%s", b)
			require.Equal(t, c.plain, plainTarget.asked())
			require.True(t, p.fenced)
			require.Equal(t, []string{"arena2"}, p.published)
		})
	}
}

// TestAPeerCheckWithBackAndNeedsAnswersBoth: a check step with both keys
// on this release's target answers the copy first (a fenced copy the
// group cannot replace yet: version_gate, the needs' gate not asked),
// then the needs' gate (version_gate, never a body the admin would take
// for the format's answer), then the format in the body.
func TestAPeerCheckWithBackAndNeedsAnswersBoth(t *testing.T) {
	t.Parallel()
	stale := &fsm.WorldInfo{ID: "arena", Incarnation: 3, Seq: 4, Imported: 9, Moved: &fsm.Fence{World: "arena", Shard: 1, Seq: 4}}
	target := &backTarget{
		gateTarget: &gateTarget{Fake: apitest.NewFake(), holds: stale,
			gate:      fmt.Errorf("%w: voter n3 reads log 14", store.ErrVersionGate),
			rulesGate: fmt.Errorf("%w: voter n4 reads log 15", store.ErrVersionGate)},
		back: fmt.Errorf("%w: voter n5 reads log 16", store.ErrVersionGate),
	}
	f := quantumMoveFake(target.gateTarget)
	f.targetGroup = target
	e := newEnvFor(t, f, withSecret)
	peer := []string{edge.HeaderClusterKey, testSecret, edge.HeaderForwarded, "1"}
	path := edge.InternalPrefix + "/cluster/worlds/arena/move"
	both := `{"step":"check","to":2,"back":true,"needs":{"log":16,"snapshot":10,"wire":1}}`

	code, _, b := e.Do("POST", path, both, peer...)
	require.Equal(t, 409, code, "%s", b)
	require.Contains(t, string(b), edge.CodeVersionGate)
	require.Contains(t, string(b), "voter n5 reads log 16", "the copy's refusal")
	require.Empty(t, target.asked, "the needs' gate is asked after the copy")

	target.back = nil
	code, _, b = e.Do("POST", path, both, peer...)
	require.Equal(t, 409, code, "%s", b)
	require.Contains(t, string(b), edge.CodeVersionGate)
	require.Contains(t, string(b), "voter n4 reads log 15", "the needs' refusal, an error even with back")
	require.Equal(t, []fsm.Versions{log16}, target.asked)

	target.rulesGate = nil
	code, _, b = e.Do("POST", path, both, peer...)
	require.Equal(t, 200, code, "%s", b)
	var got wire.MoveCheck
	require.NoError(t, json.Unmarshal(b, &got))
	require.Contains(t, got.Unsalted, "voter n3 reads log 14", "the format's answer in the body")

	target.gate = nil
	code, _, b = e.Do("POST", path, both, peer...)
	require.Equal(t, 200, code, "%s", b)
	require.JSONEq(t, `{}`, string(b))
	require.Equal(t, []fsm.Versions{log16, log16, log16}, target.asked)
	require.False(t, f.fenced, "a check fences nothing")
}

// TestAnOlderTargetsRefusalIsReadAsBeforeAndAnyRefusalOfNeedsEndsTheMove:
// a log 15/16 target leader answers back malformed and, asked again
// without it, version_gate: the format's answer, as before log 17 (an
// unsalted world moves in format 1, a salted one is refused before its
// fence). A world with needs is refused by any refusal of this
// release's target, world_exists among them, with nothing fenced.
func TestAnOlderTargetsRefusalIsReadAsBeforeAndAnyRefusalOfNeedsEndsTheMove(t *testing.T) {
	t.Parallel()
	admin := []string{edge.HeaderClusterKey, testSecret}
	gate := &wire.ErrorBody{Code: edge.CodeVersionGate, Error: "voter n3 reads log 14"}
	for _, plain := range []bool{true, false} {
		target := &strictTarget{refuse: gate}
		srv := httptest.NewServer(target)
		t.Cleanup(srv.Close)
		f := &saltedMoveFake{moveFake: &moveFake{Fake: apitest.NewFake()}, target: &gateTarget{Fake: apitest.NewFake()}, remote: srv.URL, plain: plain}
		e := newEnvFor(t, f, withSecret)
		code, _, b := e.Do("POST", wire.PathWorldMove("arena"), `{"to":2}`, admin...)
		require.Equal(t, []string{"back=true needs=false", "back=false needs=false"}, target.asked())
		if plain {
			require.Equal(t, 200, code, "%s", b)
			require.Equal(t, []byte{1}, f.formats, "format 1: the target would not read 2")
			continue
		}
		require.Equal(t, 409, code, "%s", b)
		require.Contains(t, string(b), "voter n3 reads log 14")
		require.False(t, f.fenced, "nothing fenced")
	}

	target := &strictTarget{back: true, needs: true, refuse: &wire.ErrorBody{Code: fsm.CodeWorldExists, Error: "group 2 holds the world live"}}
	srv := httptest.NewServer(target)
	t.Cleanup(srv.Close)
	f := quantumMoveFake(&gateTarget{Fake: apitest.NewFake()})
	f.remote = srv.URL
	e := newEnvFor(t, f, withSecret)
	code, _, b := e.Do("POST", wire.PathWorldMove("arena"), `{"to":2}`, admin...)
	require.Equal(t, 409, code, "%s", b)
	require.Contains(t, string(b), fsm.CodeWorldExists)
	require.Equal(t, []string{"back=true needs=true"}, target.asked())
	require.False(t, f.fenced, "nothing fenced")
	require.Empty(t, f.published)
}
