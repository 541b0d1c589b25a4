package streams

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/api/internal/apitest"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
)

var fogRules = fsm.Rules{Schema: fsm.Schema{
	Access: map[string]fsm.FieldAccess{"gold": {Visible: "owner"}, "plan": {Visible: "team"}, "trap": {Visible: "hidden"}},
	Teams:  fsm.TeamRule{From: "field", Key: "team"},
	Viewers: map[string]fsm.ViewerRule{"referee": {Sees: []string{"hidden"}},
		"caster": {Sees: []string{"hidden"}, Delay: fsm.Duration(time.Second)}},
}}

// fogEvents: seq, entity, field, value.
var fogEvents = []struct {
	entity, field string
	value         fsm.Value
}{
	{"ann", "team", fsm.String("red")},   // 1
	{"bob", "team", fsm.String("red")},   // 2
	{"cat", "team", fsm.String("blue")},  // 3
	{"ann", "gold", fsm.Int(50)},         // 4: ann's only
	{"base", "owner", fsm.String("ann")}, // 5
	{"base", "plan", fsm.String("rush")}, // 6: red's
	{"base", "trap", fsm.Int(1)},         // 7: referees'
	{"clock", "tick", fsm.Int(1)},        // 8: everyone's
}

type fogEnv struct {
	st  *apitest.RuledStore
	s   *Service
	url string
}

func newFogEnv(t *testing.T) *fogEnv {
	t.Helper()
	node := apitest.StartStore(t)
	ctx := context.Background()
	require.NoError(t, node.CreateWorld(ctx, "fog", fsm.Rules{}))
	for i, e := range fogEvents {
		a := &fsm.Action{World: "fog", Player: "gm", Seq: uint64(i + 1),
			Ops: []fsm.Op{{Kind: fsm.OpSet, Entity: e.entity, Field: e.field, Value: e.value}}}
		// A loaded machine may cost the one node its leadership a moment:
		// the same seq again is the same action.
		require.Eventually(t, func() bool { _, _, err := node.Act(ctx, a); return err == nil }, 10*time.Second, 10*time.Millisecond)
	}
	rs := apitest.NewRuledStore(node, fogRules)
	cfg := apitest.Config()
	cfg.Auth = apitest.Auth()
	core := apitest.Core(t, rs, &cfg)
	s, err := New(core)
	require.NoError(t, err)
	mux := http.NewServeMux()
	s.Register(mux)
	ts := httptest.NewServer(core.Handler(mux))
	t.Cleanup(func() { core.Close(); ts.Close(); s.Close() })
	return &fogEnv{st: rs, s: s, url: ts.URL}
}

func token(t *testing.T, player, role string) string {
	return apitest.Sign(t, jwt.SigningMethodHS256, apitest.Keys.HS, edge.AdminClaims{RegisteredClaims: apitest.Claims(player), Role: role})
}

// open opens an event stream as the token's caller and returns its lines.
func (e *fogEnv) open(t *testing.T, query, tok string) *bufio.Scanner {
	t.Helper()
	return e.openFrom(t, 1, query, tok)
}

func (e *fogEnv) openFrom(t *testing.T, from int, query, tok string) *bufio.Scanner {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("%s/v1/worlds/fog/events?from=%d%s", e.url, from, query), nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { cancel(); resp.Body.Close() })
	require.Equal(t, http.StatusOK, resp.StatusCode)
	return bufio.NewScanner(resp.Body)
}

type line struct {
	Seq     uint64
	Time    int64
	Code    string
	Changes []struct{ Entity, Field string }
	raw     string
}

func next(t *testing.T, sc *bufio.Scanner) line {
	t.Helper()
	require.True(t, sc.Scan(), "stream ended: %v", sc.Err())
	var l line
	require.NoError(t, json.Unmarshal(sc.Bytes(), &l), sc.Text())
	l.raw = sc.Text()
	return l
}

func TestEventStreamShowsEachCallerOnlyWhatItsViewMaySee(t *testing.T) {
	e := newFogEnv(t)
	for _, c := range []struct {
		name, query, player, role string
		seqs                      []uint64
		hidden                    []string // field names never in its bytes
	}{
		{"ann", "", "ann", "", []uint64{1, 2, 3, 4, 5, 6, 8}, []string{"trap"}},
		{"bob, ann's teammate", "", "bob", "", []uint64{1, 2, 3, 5, 6, 8}, []string{"gold", "trap"}},
		{"cat, of the other team", "", "cat", "", []uint64{1, 2, 3, 5, 8}, []string{"gold", "plan", "trap", "rush"}},
		{"a referee", "&view=referee", "ref", "referee", []uint64{1, 2, 3, 5, 7, 8}, []string{"gold", "plan"}},
		{"a game server", "", "gs", fsm.RoleServer, []uint64{1, 2, 3, 4, 5, 6, 7, 8}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			sc := e.open(t, c.query, token(t, c.player, c.role))
			var seqs []uint64
			for len(seqs) == 0 || seqs[len(seqs)-1] < 8 {
				l := next(t, sc)
				require.Empty(t, l.Code, l.raw)
				for _, h := range c.hidden {
					require.NotContains(t, l.raw, `"`+h+`"`, "seq %d", l.Seq)
				}
				if c.role != fsm.RoleServer {
					require.Contains(t, l.raw, `"client_seq":0,`, "another player's client seq")
				}
				seqs = append(seqs, l.Seq)
			}
			require.Equal(t, c.seqs, seqs)
		})
	}
}

func TestEventStreamsOfOneViewShareOneFan(t *testing.T) {
	e := newFogEnv(t)
	a, b := e.open(t, "", token(t, "bob", "")), e.open(t, "", token(t, "bob", ""))
	for _, sc := range []*bufio.Scanner{a, b} {
		for next(t, sc).Seq < 8 {
		}
	}
	e.s.views.mu.Lock()
	fans := len(e.s.views.fans)
	e.s.views.mu.Unlock()
	require.Equal(t, 1, fans, "one fan for bob's view")
}

func TestEventStreamEndsWhenTheRulesChange(t *testing.T) {
	e := newFogEnv(t)
	sc := e.open(t, "", token(t, "cat", ""))
	for next(t, sc).Seq < 8 {
	}
	e.st.BumpRules()
	require.Eventually(t, func() bool { v, _ := e.s.views.vis.RulesVersion("fog", edge.RulesRef{}); return v.Version == 2 }, 5*time.Second, time.Millisecond)
	_, _, err := e.st.Act(context.Background(), &fsm.Action{World: "fog", Player: "gm", Seq: 100,
		Ops: []fsm.Op{{Kind: fsm.OpSet, Entity: "clock", Field: "tick", Value: fsm.Int(2)}}})
	require.NoError(t, err)
	l := next(t, sc)
	require.Equal(t, edge.CodeUnavailable, l.Code, l.raw)
	require.Contains(t, l.raw, "rules changed")
}

func TestDelayedViewGetsNoEventNewerThanTheDelay(t *testing.T) {
	e := newFogEnv(t)
	sc := e.open(t, "&view=caster", token(t, "c1", "caster"))
	for {
		l := next(t, sc)
		age := time.Duration(time.Now().UnixNano() - l.Time)
		require.GreaterOrEqual(t, age, time.Second, "seq %d came %s after its leader time", l.Seq, age)
		if l.Seq == 8 {
			break
		}
	}
}

func TestEventStreamRefusesAClassTheTokenDoesNotHold(t *testing.T) {
	e := newFogEnv(t)
	req, err := http.NewRequest("GET", e.url+"/v1/worlds/fog/events?view=referee", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token(t, "cat", ""))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	var body edge.ErrorBody
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	require.Equal(t, edge.CodeForbidden, body.Code)
	require.True(t, strings.Contains(body.Error, "referee"))
}

// A stream that starts before what the view's shared prepared events hold
// (seeded with the world's state by a stream of new events only) prepares
// the older events itself, from the world's start, and shows the same.
func TestEventStreamBehindTheSharedPreparedEventsPreparesItsOwn(t *testing.T) {
	e := newFogEnv(t)
	head := e.openFrom(t, 0, "", token(t, "bob", ""))
	_ = head // holds the shared prepared events, seeded at seq 8
	require.Eventually(t, func() bool {
		e.s.views.mu.Lock()
		defer e.s.views.mu.Unlock()
		return len(e.s.views.fans) == 1
	}, 5*time.Second, time.Millisecond)
	sc := e.open(t, "", token(t, "bob", ""))
	var seqs []uint64
	for len(seqs) == 0 || seqs[len(seqs)-1] < 8 {
		l := next(t, sc)
		require.Empty(t, l.Code, l.raw)
		require.NotContains(t, l.raw, `"gold"`)
		seqs = append(seqs, l.Seq)
	}
	require.Equal(t, []uint64{1, 2, 3, 5, 6, 8}, seqs)
}

// In a world that restricts nothing a stream sends every event, and a
// rules update that still restricts nothing does not end it; one that
// restricts a field does.
func TestEventStreamOfAnOpenWorldEndsOnlyWhenTheRulesRestrictAField(t *testing.T) {
	e := newFogEnv(t)
	e.st.SetRules(fsm.Rules{})
	sc := e.open(t, "", token(t, "cat", ""))
	for next(t, sc).Seq < 8 {
	}
	tick := func(seq uint64) {
		t.Helper()
		require.Eventually(t, func() bool {
			v, _ := e.s.views.vis.RulesVersion("fog", edge.RulesRef{})
			return v.Version == e.st.Version()
		}, 5*time.Second, time.Millisecond)
		_, _, err := e.st.Act(context.Background(), &fsm.Action{World: "fog", Player: "gm", Seq: seq,
			Ops: []fsm.Op{{Kind: fsm.OpSet, Entity: "ann", Field: "gold", Value: fsm.Int(int64(seq))}}})
		require.NoError(t, err)
	}
	e.st.SetRules(fsm.Rules{Strict: false})
	tick(100)
	l := next(t, sc)
	require.Equal(t, uint64(9), l.Seq, l.raw)
	require.Contains(t, l.raw, `"gold"`)
	e.st.SetRules(fogRules)
	tick(101)
	l = next(t, sc)
	require.Equal(t, edge.CodeUnavailable, l.Code, l.raw)
}
