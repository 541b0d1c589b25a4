package api

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/api/internal/apitest"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
)

// fogRules: a player's gold is its own, a base's plan its team's, a trap
// nobody's but the referee class's; teams come from the team field.
var fogRules = fsm.Rules{Schema: fsm.Schema{
	Access: map[string]fsm.FieldAccess{"gold": {Visible: "owner"}, "plan": {Visible: "team"}, "trap": {Visible: "hidden"}},
	Teams:  fsm.TeamRule{From: "field", Key: "team"},
	Viewers: map[string]fsm.ViewerRule{"referee": {Sees: []string{"hidden"}},
		"caster": {Sees: []string{"hidden"}, Delay: fsm.Duration(30e9)}},
}}

// newFogWorld makes world "fog" on fake (which, unlike fsm, takes any
// rules) with ann and bob of red, cat of blue, and red's base.
func newFogWorld(t *testing.T, fake *apitest.Fake) {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, fake.CreateWorld(ctx, "fog", fogRules))
	set := func(seq uint64, entity, field string, v fsm.Value) {
		_, _, err := fake.Act(ctx, &fsm.Action{World: "fog", Player: "gm", Seq: seq,
			Ops: []fsm.Op{{Kind: fsm.OpSet, Entity: entity, Field: field, Value: v}}})
		require.NoError(t, err)
	}
	set(1, "ann", "team", fsm.String("red"))
	set(2, "bob", "team", fsm.String("red"))
	set(3, "cat", "team", fsm.String("blue"))
	set(4, "ann", "gold", fsm.Int(50))
	set(5, "base", "owner", fsm.String("ann"))
	set(6, "base", "plan", fsm.String("rush"))
	set(7, "base", "trap", fsm.Int(1))
}

func TestEntityReadsShowOnlyWhatTheCallerMaySee(t *testing.T) {
	fake := apitest.NewFake()
	newFogWorld(t, fake)
	e := newEnv(t, fake, withAuth, withSecret)
	as := func(player, role string, admin bool) []string {
		return []string{"Authorization", roleToken(t, player, role, admin)}
	}
	for _, c := range []struct {
		name, path string
		hdr        []string
		fields     []string
		version    float64
	}{
		{"ann sees her gold", "/v1/worlds/fog/entities/ann", as("ann", "", false), []string{"gold", "team"}, 4},
		{"bob does not see ann's gold nor its version", "/v1/worlds/fog/entities/ann", as("bob", "", false), []string{"team"}, 1},
		{"bob sees his team's plan", "/v1/worlds/fog/entities/base", as("bob", "", false), []string{"owner", "plan"}, 6},
		{"cat sees no plan", "/v1/worlds/fog/entities/base", as("cat", "", false), []string{"owner"}, 5},
		{"a referee sees the trap", "/v1/worlds/fog/entities/base?view=referee", as("ref", "referee", false), []string{"owner", "trap"}, 7},
		{"a game server sees all", "/v1/worlds/fog/entities/base", as("gs", fsm.RoleServer, false), []string{"owner", "plan", "trap"}, 7},
		{"an admin sees all", "/v1/worlds/fog/entities/base", as("ops", "", true), []string{"owner", "plan", "trap"}, 7},
		{"the cluster secret sees all", "/v1/worlds/fog/entities/base", []string{edge.HeaderClusterKey, testSecret}, []string{"owner", "plan", "trap"}, 7},
		{"a stale read is cut too", "/v1/worlds/fog/entities/ann?consistency=stale", as("cat", "", false), []string{"team"}, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, m := e.DoJSON("GET", c.path, "", c.hdr...)
			require.Equal(t, http.StatusOK, code, "%v", m)
			var names []string
			for n := range m["fields"].(map[string]any) {
				names = append(names, n)
			}
			require.ElementsMatch(t, c.fields, names)
			var vnames []string
			for n := range m["versions"].(map[string]any) {
				vnames = append(vnames, n)
			}
			require.ElementsMatch(t, c.fields, vnames, "versions of fields it may not see")
			require.Equal(t, c.version, m["version"])
		})
	}
	// Nothing visible: the entity does not exist for the caller.
	fakeAct(t, fake, 8, "pit", "trap", fsm.Int(2))
	e.RequireError(http.StatusNotFound, fsm.CodeNotFound, "GET", "/v1/worlds/fog/entities/pit", "", as("cat", "", false)...)
	// A class the token's role does not name is forbidden; an unknown one malformed.
	e.RequireError(http.StatusForbidden, edge.CodeForbidden, "GET", "/v1/worlds/fog/entities/base?view=referee", "", as("cat", "", false)...)
	e.RequireError(http.StatusBadRequest, fsm.CodeMalformed, "GET", "/v1/worlds/fog/entities/base?view=nobody", "", as("nobody", "nobody", false)...)
	// A delayed class may not read the present.
	e.RequireError(http.StatusForbidden, edge.CodeForbidden, "GET", "/v1/worlds/fog/entities/base?view=caster", "", as("c", "caster", false)...)
}

// A state hash covers hidden values, so in a world that restricts fields
// only callers who see everything get one; elsewhere anyone does.
func TestStateHashesOfARestrictedWorldAreForThoseWhoSeeEverything(t *testing.T) {
	fake := apitest.NewFake()
	newFogWorld(t, fake)
	require.NoError(t, fake.CreateWorld(context.Background(), "open", fsm.Rules{}))
	e := newEnv(t, fake, withAuth, withSecret)
	cat := []string{"Authorization", roleToken(t, "cat", "", false)}
	e.RequireError(http.StatusForbidden, edge.CodeForbidden, "GET", "/v1/worlds/fog/hash", "", cat...)
	e.RequireError(http.StatusForbidden, edge.CodeForbidden, "GET", "/v1/worlds/fog/hash?seq=3", "", cat...)
	for _, hdr := range [][]string{
		{"Authorization", roleToken(t, "gs", fsm.RoleServer, false)},
		{"Authorization", roleToken(t, "ops", "", true)},
		{edge.HeaderClusterKey, testSecret},
	} {
		code, m := e.DoJSON("GET", "/v1/worlds/fog/hash", "", hdr...)
		require.Equal(t, http.StatusOK, code, "%v", m)
		require.NotEmpty(t, m["hash"])
	}
	code, m := e.DoJSON("GET", "/v1/worlds/open/hash", "", cat...)
	require.Equal(t, http.StatusOK, code, "%v", m)

	// The world summaries carry the hash on the same terms.
	hashes := func(hdr []string) map[string]any {
		code, m := e.DoJSON("GET", "/v1/worlds", "", hdr...)
		require.Equal(t, http.StatusOK, code, "%v", m)
		out := map[string]any{}
		for _, w := range m["worlds"].([]any) {
			w := w.(map[string]any)
			out[w["id"].(string)] = w["hash"]
		}
		code, one := e.DoJSON("GET", "/v1/worlds/fog", "", hdr...)
		require.Equal(t, http.StatusOK, code, "%v", one)
		require.Equal(t, out["fog"], one["hash"])
		return out
	}
	got := hashes(cat)
	require.Nil(t, got["fog"], "no hash of a restricted world for a player")
	require.NotEmpty(t, got["open"])
	got = hashes([]string{"Authorization", roleToken(t, "gs", fsm.RoleServer, false)})
	require.NotEmpty(t, got["fog"])
	require.NotEmpty(t, got["open"])
}

func TestEntityReadsWithAuthOffTakeTheViewerFromTheQuery(t *testing.T) {
	fake := apitest.NewFake()
	newFogWorld(t, fake)
	e := newEnv(t, fake)
	for path, fields := range map[string][]string{
		"/v1/worlds/fog/entities/ann":               {"team"},
		"/v1/worlds/fog/entities/ann?player=ann":    {"gold", "team"},
		"/v1/worlds/fog/entities/base?player=bob":   {"owner", "plan"},
		"/v1/worlds/fog/entities/base?view=referee": {"owner", "trap"},
	} {
		code, m := e.DoJSON("GET", path, "")
		require.Equal(t, http.StatusOK, code, "%s: %v", path, m)
		var names []string
		for n := range m["fields"].(map[string]any) {
			names = append(names, n)
		}
		require.ElementsMatch(t, fields, names, path)
	}
}

func fakeAct(t *testing.T, fake *apitest.Fake, seq uint64, entity, field string, v fsm.Value) {
	t.Helper()
	_, _, err := fake.Act(context.Background(), &fsm.Action{World: "fog", Player: "gm", Seq: seq,
		Ops: []fsm.Op{{Kind: fsm.OpSet, Entity: entity, Field: field, Value: v}}})
	require.NoError(t, err)
}

// Over a real store: the rules keys are accepted, and the reads cut.
func TestVisibilityRulesOverARealStore(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	n := startNodeOn(t, "n1", true, ln, withAuth)
	require.Eventually(t, n.st.LeaderReady, 10*time.Second, 10*time.Millisecond)
	gs := roleToken(t, "gs", fsm.RoleServer, false)
	code, _, b := n.env.Do("POST", "/v1/worlds", `{"id":"fog","rules":{"fields":{
		"gold":{"type":"int","policy":"authoritative","visible":"owner"},
		"team":{"type":"string","policy":"authoritative"}},
		"teams":{"from":"field","key":"team"},
		"viewers":{"referee":{"sees":["owner"]}}}}`, "Authorization", gs)
	require.Equal(t, http.StatusCreated, code, "%s", b)
	code, _, b = n.env.Do("POST", "/v1/worlds/fog/actions", `{"seq":1,"ops":[{"op":"set","entity":"ann","field":"gold","value":7},{"op":"set","entity":"ann","field":"team","value":"red"}]}`, "Authorization", gs)
	require.Equal(t, http.StatusOK, code, "%s", b)
	for tok, fields := range map[string][]string{
		roleToken(t, "ann", "", false): {"gold", "team"},
		roleToken(t, "bob", "", false): {"team"},
		gs:                             {"gold", "team"},
	} {
		code, m := n.env.DoJSON("GET", "/v1/worlds/fog/entities/ann", "", "Authorization", tok)
		require.Equal(t, http.StatusOK, code, "%v", m)
		var names []string
		for f := range m["fields"].(map[string]any) {
			names = append(names, f)
		}
		require.ElementsMatch(t, fields, names)
	}
	code, m := n.env.DoJSON("GET", "/v1/worlds/fog/entities/ann?view=referee", "", "Authorization", roleToken(t, "r", "referee", false))
	require.Equal(t, http.StatusOK, code, "%v", m)
	require.Contains(t, m["fields"], "gold")
	// The mallory probe of a hidden value: an expect that fails answers
	// the field's current value, which bob may not see.
	code, m = n.env.DoJSON("POST", "/v1/worlds/fog/actions", `{"seq":1,"ops":[{"op":"set","entity":"ann","field":"gold","value":1,"expect":"*"}]}`,
		"Authorization", roleToken(t, "bob", "", false))
	require.Equal(t, http.StatusOK, code, "%v", m)
	require.Equal(t, "conflict", m["status"])
	require.Empty(t, m["changes"], "the conflict's current value of ann's gold")
	require.NotContains(t, m, "versions")
	// ann's own probe answers it.
	code, m = n.env.DoJSON("POST", "/v1/worlds/fog/actions:batch", `{"actions":[{"seq":1,"ops":[{"op":"set","entity":"ann","field":"gold","value":1,"expect":"*"}]}]}`,
		"Authorization", roleToken(t, "ann", "", false))
	require.Equal(t, http.StatusOK, code, "%v", m)
	res := m["results"].([]any)[0].(map[string]any)
	require.Equal(t, "conflict", res["status"])
	require.Len(t, res["changes"], 1)
}

// An action whose world this node no longer knows (deleted since it
// committed) is answered with its outcome only: no rules say what its
// player may see.
func TestActionAnswerOfAGoneWorldKeepsOnlyTheOutcome(t *testing.T) {
	fake := apitest.NewFake()
	ev := &fsm.Event{World: "gone", Seq: 4, Index: 9, Player: "p1", ClientSeq: 1, Status: fsm.StatusConflict,
		Changes: []fsm.Change{{Entity: "vault", Field: "code", Value: fsm.Int(1234), Version: 2, Exists: true}}}
	fake.ActHook = func(context.Context, *fsm.Action) (*fsm.Event, bool, error) { return ev, false, nil }
	e := newEnv(t, fake)
	code, m := e.DoJSON("POST", "/v1/worlds/gone/actions", incrBody)
	require.Equal(t, http.StatusOK, code, "%v", m)
	require.Equal(t, "conflict", m["status"])
	require.Nil(t, m["changes"])
}

// Teams from session data (teams.from "data"): the players' critical data
// names their teams, and every read path follows it.
func TestTeamsFromSessionDataDecideWhoSeesTeamFields(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	n := startNodeOn(t, "n1", true, ln, withAuth)
	require.Eventually(t, n.st.LeaderReady, 10*time.Second, 10*time.Millisecond)
	admin := roleToken(t, "ops", "", true)
	code, _, b := n.env.Do("POST", "/v1/worlds", `{"id":"fog","rules":{"fields":{
		"plan":{"type":"string","policy":"authoritative","visible":"team"}},
		"teams":{"from":"data","key":"side"}}}`, "Authorization", admin)
	require.Equal(t, http.StatusCreated, code, "%s", b)
	code, _, b = n.env.Do("POST", "/v1/worlds/fog/sessions:import", `{"players":[
		{"player":"ann","data":{"side":"red"}},{"player":"bob","data":{"side":"red"}},{"player":"cat","data":{"side":"blue"}}]}`,
		"Authorization", admin)
	require.Equal(t, http.StatusOK, code, "%s", b)
	code, _, b = n.env.Do("POST", "/v1/worlds/fog/actions", `{"seq":1,"ops":[{"op":"set","entity":"ann","field":"plan","value":"rush"}]}`,
		"Authorization", roleToken(t, "ann", "", false))
	require.Equal(t, http.StatusOK, code, "%s", b)
	code, _, b = n.env.Do("POST", "/v1/worlds/fog/actions", `{"seq":2,"ops":[{"op":"set","entity":"clock","field":"tick","value":1}]}`,
		"Authorization", roleToken(t, "ann", "", false))
	require.Equal(t, http.StatusOK, code, "%s", b) // seq 2: everyone's
	for player, sees := range map[string]bool{"ann": true, "bob": true, "cat": false} {
		tok := roleToken(t, player, "", false)
		code, m := n.env.DoJSON("GET", "/v1/worlds/fog/entities/ann?consistency=stale", "", "Authorization", tok)
		if !sees {
			require.Equal(t, http.StatusNotFound, code, "%s: %v", player, m)
		} else {
			require.Equal(t, http.StatusOK, code, "%s: %v", player, m)
			require.Contains(t, m["fields"], "plan", player)
		}
		// The event stream up to seq 2: the plan's event, or nothing of it.
		req, err := http.NewRequest("GET", n.env.TS.URL+"/v1/worlds/fog/events?from=1", nil)
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		req = req.WithContext(ctx)
		req.Header.Set("Authorization", tok)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		rd := bufio.NewReader(resp.Body)
		var got string
		for !strings.Contains(got, `"seq":2,`) {
			line, err := rd.ReadString('\n')
			require.NoError(t, err, "%s: %q", player, got)
			got += line
		}
		cancel()
		resp.Body.Close()
		require.Equal(t, sees, strings.Contains(got, `"rush"`), "%s: %q", player, got)
	}
}

// A world deleted and created again under the same id is another world:
// its rules (version 1 again) are compiled anew, never taken for the old
// one's.
func TestAWorldCreatedAgainIsCutUnderItsOwnRules(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	n := startNodeOn(t, "n1", true, ln, withAuth)
	require.Eventually(t, n.st.LeaderReady, 10*time.Second, 10*time.Millisecond)
	admin := roleToken(t, "ops", "", true)
	bob := roleToken(t, "bob", "", false)
	create := func(rules string) {
		t.Helper()
		code, _, b := n.env.Do("POST", "/v1/worlds", `{"id":"fog","rules":`+rules+`}`, "Authorization", admin)
		require.Equal(t, http.StatusCreated, code, "%s", b)
		code, _, b = n.env.Do("POST", "/v1/worlds/fog/actions", `{"seq":1,"ops":[{"op":"set","entity":"ann","field":"gold","value":7}]}`, "Authorization", roleToken(t, "ann", "", false))
		require.Equal(t, http.StatusOK, code, "%s", b)
	}
	create(`{"fields":{"gold":{"type":"int","policy":"authoritative"}}}`)
	code, m := n.env.DoJSON("GET", "/v1/worlds/fog/entities/ann", "", "Authorization", bob)
	require.Equal(t, http.StatusOK, code, "%v", m)
	require.Contains(t, m["fields"], "gold", "open rules")
	code, _, b := n.env.Do("DELETE", "/v1/worlds/fog", "", "Authorization", admin)
	require.Equal(t, http.StatusOK, code, "%s", b)
	create(`{"fields":{"gold":{"type":"int","policy":"authoritative","visible":"owner"}}}`)
	code, m = n.env.DoJSON("GET", "/v1/worlds/fog/entities/ann", "", "Authorization", bob)
	require.Equal(t, http.StatusNotFound, code, "ann's gold is hers in the new world: %v", m)
}
