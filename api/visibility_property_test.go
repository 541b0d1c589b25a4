package api

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// The read paths' property (issue 13): random games under random
// visibility rules, played over HTTP on a real store, and every byte that
// the event stream, the entity reads and the play streams send each
// caller (and the answers to its actions) checked against a reference of
// what its view may see, written
// apart from package spectator: no value, set element, field or version
// of a field the caller may not see.

var (
	vpPlayers  = []string{"P0", "P1", "P2"}
	vpEntities = []string{"P0", "P1", "P2", "OB0", "OB1"}
	vpFields   = []string{"F0", "F1", "S0", "C0"}
	vpVis      = []string{"", "owner", "team", "hidden"}
	vpTokenRE  = regexp.MustCompile(`V[0-9]+x[A-Z0-9]+x[A-Z0-9]+`)
)

// vpGame is one random world: its rules, who owns what and is on which
// side (fixed at the start), and the reference.
type vpGame struct {
	world string
	vis   map[string]string
	sees  []string          // the "ref" class's
	owner map[string]string // entity → its owner field (none: itself)
	side  map[string]string // entity → its side (none: its owner's)
}

func (g *vpGame) rules() string {
	var fields []string
	for _, f := range vpFields {
		typ, policy := "string", "authoritative"
		switch f {
		case "S0":
			policy = "set"
		case "C0":
			typ, policy = "int", "counter"
		}
		vis := ""
		if g.vis[f] != "" {
			vis = fmt.Sprintf(`,"visible":%q`, g.vis[f])
		}
		fields = append(fields, fmt.Sprintf(`%q:{"type":%q,"policy":%q%s}`, f, typ, policy, vis))
	}
	fields = append(fields, `"side":{"type":"string","policy":"authoritative"}`, `"owner":{"type":"string","policy":"authoritative"}`)
	sees, _ := json.Marshal(g.sees)
	return fmt.Sprintf(`{"id":%q,"rules":{"fields":{%s},"teams":{"from":"field","key":"side"},"viewers":{"ref":{"sees":%s}}}}`,
		g.world, strings.Join(fields, ","), sees)
}

// who returns an entity's owner and team.
func (g *vpGame) who(entity string) (owner, team string) {
	owner = entity
	if o, ok := g.owner[entity]; ok {
		owner = o
	}
	team, ok := g.side[entity]
	if !ok && owner != entity {
		team = g.side[owner]
	}
	return owner, team
}

// visible is the reference: may the viewer (a player, or "" for the ref
// class) see field of entity?
func (g *vpGame) visible(player, field, entity string) bool {
	vis, ok := g.vis[field]
	if !ok || vis == "" {
		return true // side, owner, tick: undeclared visibility
	}
	if player == "" {
		return slices.Contains(g.sees, vis)
	}
	owner, team := g.who(entity)
	mine := player == owner
	switch vis {
	case "owner":
		return mine
	case "team":
		_, myTeam := g.who(player)
		return mine || myTeam != "" && myTeam == team
	}
	return false
}

// check fails when b, one message sent to the viewer, shows anything of
// a field it may not see.
func (g *vpGame) check(t *rapid.T, viewer, path string, b []byte) {
	for _, tok := range vpTokenRE.FindAll(b, -1) {
		parts := strings.SplitN(string(tok), "x", 3)
		if !g.visible(viewer, parts[1], parts[2]) {
			t.Fatalf("%s got %s on %s: field %s of %s is %q to it\n%s", viewer, tok, path, parts[1], parts[2], g.vis[parts[1]], b)
		}
	}
	var v any
	require.NoError(t, json.Unmarshal(b, &v), "%s", b)
	g.walk(t, viewer, path, v)
}

// walk checks every (entity, field) a decoded message names: changes,
// events' versions, entity reads' fields and versions, deltas' entities.
func (g *vpGame) walk(t *rapid.T, viewer, path string, v any) {
	need := func(entity, field, where string) {
		if !g.visible(viewer, field, entity) {
			t.Fatalf("%s got field %s of %s in %s on %s", viewer, field, entity, where, path)
		}
	}
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			g.walk(t, viewer, path, e)
		}
	case map[string]any:
		if e, ok := x["entity"].(string); ok {
			if f, ok := x["field"].(string); ok && f != "" {
				need(e, f, "a change")
			}
		}
		if vs, ok := x["versions"].(map[string]any); ok {
			for e, m := range vs {
				if fm, ok := m.(map[string]any); ok { // an event's: entity → field → version
					for f := range fm {
						need(e, f, "versions")
					}
				} else if id, ok := x["id"].(string); ok { // an entity read's: field → version
					need(id, e, "versions")
				}
			}
		}
		if id, ok := x["id"].(string); ok {
			if fs, ok := x["fields"].(map[string]any); ok {
				for f := range fs {
					need(id, f, "fields")
				}
			}
		}
		if ents, ok := x["entities"].(map[string]any); ok { // a delta
			for e, ed := range ents {
				if fs, ok := ed.(map[string]any)["fields"].(map[string]any); ok {
					for f := range fs {
						need(e, f, "a delta")
					}
				}
			}
		}
		for _, e := range x {
			g.walk(t, viewer, path, e)
		}
	}
}

func TestPropertyNoReadPathSendsWhatTheCallersViewMayNotSee(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	n := startNodeOn(t, "n1", true, ln, withAuth)
	require.Eventually(t, n.st.LeaderReady, 10*time.Second, 10*time.Millisecond)
	gs := roleToken(t, "gs", "server", false)
	tokens := map[string]string{"": roleToken(t, "r", "ref", false)}
	for _, p := range vpPlayers {
		tokens[p] = roleToken(t, p, "", false)
	}
	worlds := 0
	rapid.Check(t, func(rt *rapid.T) {
		worlds++
		g := &vpGame{world: fmt.Sprintf("vp%d", worlds), vis: map[string]string{}, owner: map[string]string{}, side: map[string]string{}}
		for _, f := range vpFields {
			g.vis[f] = rapid.SampledFrom(vpVis).Draw(rt, "visible "+f)
		}
		g.sees = rapid.SliceOfDistinct(rapid.SampledFrom(vpVis[1:]), rapid.ID[string]).Draw(rt, "ref sees")
		code, _, b := n.env.Do("POST", "/v1/worlds", g.rules(), "Authorization", gs)
		require.Equal(rt, http.StatusCreated, code, "%s", b)
		actAs := func(tok, body string) uint64 {
			code, _, b := n.env.Do("POST", "/v1/worlds/"+g.world+"/actions", body, "Authorization", tok)
			require.Equal(rt, http.StatusOK, code, "%s", b)
			var ev struct{ Seq uint64 }
			require.NoError(rt, json.Unmarshal(b, &ev))
			return ev.Seq
		}
		// Sides and owners first, by the game server; fixed from then on.
		var ops []string
		for _, e := range vpEntities {
			if s := rapid.SampledFrom([]string{"", "red", "blue"}).Draw(rt, "side of "+e); s != "" {
				g.side[e] = s
				ops = append(ops, fmt.Sprintf(`{"op":"set","entity":%q,"field":"side","value":%q}`, e, s))
			}
			if o := rapid.SampledFrom(append([]string{""}, vpPlayers...)).Draw(rt, "owner of "+e); o != "" {
				g.owner[e] = o
				ops = append(ops, fmt.Sprintf(`{"op":"set","entity":%q,"field":"owner","value":%q}`, e, o))
			}
		}
		ops = append(ops, `{"op":"set","entity":"clock","field":"tick","value":0}`)
		actAs(gs, `{"seq":1,"ops":[`+strings.Join(ops, ",")+`]}`)
		// The players' play streams, open before the game.
		plays := map[string]*websocket.Conn{}
		for _, p := range vpPlayers {
			c, _, err := websocket.Dial(context.Background(), n.env.WSURL(g.world), &websocket.DialOptions{Subprotocols: []string{wire.SubprotocolJSON}})
			require.NoError(rt, err)
			defer c.CloseNow()
			c.SetReadLimit(16 << 20)
			hello, _ := json.Marshal(map[string]any{"type": "hello", "token": strings.TrimPrefix(tokens[p], "Bearer ")})
			require.NoError(rt, c.Write(context.Background(), websocket.MessageText, hello))
			_, b, err := c.Read(context.Background())
			require.NoError(rt, err)
			require.Contains(rt, string(b), `"welcome"`)
			plays[p] = c
		}
		seqs := map[string]int{}
		var last uint64
		for range rapid.IntRange(1, 12).Draw(rt, "actions") {
			p := rapid.SampledFrom(vpPlayers).Draw(rt, "player")
			seqs[p]++
			var ops []string
			for range rapid.IntRange(1, 3).Draw(rt, "ops") {
				e := rapid.SampledFrom(vpEntities).Draw(rt, "entity")
				f := rapid.SampledFrom(vpFields).Draw(rt, "field")
				val := fmt.Sprintf("V%dx%sx%s", seqs[p], f, e)
				switch f {
				case "S0":
					ops = append(ops, fmt.Sprintf(`{"op":"add","entity":%q,"field":"S0","value":%q}`, e, val))
				case "C0":
					ops = append(ops, fmt.Sprintf(`{"op":"incr","entity":%q,"field":"C0","by":1}`, e))
				default:
					ops = append(ops, fmt.Sprintf(`{"op":"set","entity":%q,"field":%q,"value":%q}`, e, f, val))
				}
			}
			bulk := ""
			if rapid.Bool().Draw(rt, "bulk") {
				bulk = `"priority":"bulk",`
			}
			body := fmt.Sprintf(`{"seq":%d,%s"ops":[%s]}`, seqs[p], bulk, strings.Join(ops, ","))
			if rapid.Bool().Draw(rt, "batch") {
				code, _, b := n.env.Do("POST", "/v1/worlds/"+g.world+"/actions:batch", `{"actions":[`+body+`]}`, "Authorization", tokens[p])
				require.Equal(rt, http.StatusOK, code, "%s", b)
				g.check(rt, p, "a batch answer", b)
			} else {
				code, _, b := n.env.Do("POST", "/v1/worlds/"+g.world+"/actions", body, "Authorization", tokens[p])
				require.Equal(rt, http.StatusOK, code, "%s", b)
				g.check(rt, p, "an action's answer", b)
			}
		}
		seqs["P0"]++
		last = actAs(tokens["P0"], fmt.Sprintf(`{"seq":%d,"ops":[{"op":"set","entity":"clock","field":"tick","value":1}]}`, seqs["P0"]))

		for viewer, tok := range tokens {
			// Entity reads.
			for _, e := range vpEntities {
				path := "/v1/worlds/" + g.world + "/entities/" + e
				if viewer == "" {
					path += "?view=ref"
				}
				code, _, b := n.env.Do("GET", path, "", "Authorization", tok)
				if code == http.StatusNotFound {
					continue
				}
				require.Equal(rt, http.StatusOK, code, "%s", b)
				g.check(rt, viewer, path, b)
			}
			// The event stream, from the start to the last event.
			path := "/v1/worlds/" + g.world + "/events?from=1"
			if viewer == "" {
				path += "&view=ref"
			}
			g.readStream(rt, n.env.TS.URL+path, tok, viewer, last)
		}
		// The play streams, up to the last event.
		for p, c := range plays {
			for covered := uint64(0); covered < last; {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				_, b, err := c.Read(ctx)
				cancel()
				require.NoError(rt, err)
				var m struct {
					Type string
					Seq  uint64
				}
				require.NoError(rt, json.Unmarshal(b, &m))
				if m.Type == "events" || m.Type == "delta" {
					g.check(rt, p, "play", b)
					covered = max(covered, m.Seq)
				}
			}
		}
	})
}

// readStream reads an event stream as tok until the event at seq last
// and checks every line.
func (g *vpGame) readStream(t *rapid.T, url, tok, viewer string, last uint64) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", tok)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		g.check(t, viewer, url, sc.Bytes())
		var ev struct {
			Seq  uint64
			Code string
		}
		require.NoError(t, json.Unmarshal(sc.Bytes(), &ev))
		require.Empty(t, ev.Code, sc.Text())
		if ev.Seq >= last {
			return
		}
	}
	t.Fatalf("stream %s ended before seq %d: %v", url, last, sc.Err())
}
