package api

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/api/internal/apitest"
	"github.com/gsd-dev/gsd/internal/golden"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/store"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// The HTTP JSON answers of the real handlers over a fixed backend: the
// fake backend with fixed worlds, entity, hash, status and action outcomes,
// so that no field varies by run. Each golden file holds the status, the
// headers a client reads (Content-Type, Retry-After, WWW-Authenticate,
// Allow; never Date or Content-Length) and the body.

// goldenBackend is the fake backend with deterministic reads.
type goldenBackend struct{ *apitest.Fake }

func (goldenBackend) Worlds() []fsm.WorldInfo {
	return []fsm.WorldInfo{
		{ID: "arena", Origin: "eu-west", Rules: goldenRules(), Seq: 9, Index: 7, Entities: 2, Players: 3, Hash: 0x45e9d67d3e56529d},
		{ID: "lobby", Origin: "us-east", Seq: 3, Index: 4, Entities: 1, Players: 1, Hash: 0x7f39c820bc782726},
	}
}

func (g goldenBackend) Entity(ctx context.Context, world, id string, c store.Consistency) (fsm.EntityView, error) {
	if world != "arena" || id != "hero" {
		return g.Fake.Entity(ctx, world, id, c)
	}
	return fsm.EntityView{ID: "hero", Version: 8, Seq: 9, Fields: []fsm.FieldView{
		{Name: "alive", Policy: fsm.PolicyAuthoritative, Value: fsm.Bool(true), Version: 1},
		{Name: "best", Policy: fsm.PolicyMax, Value: fsm.Float(9.5), Version: 1},
		{Name: "hp", Policy: fsm.PolicyCounter, Value: fsm.Int(75), Version: 8},
		{Name: "name", Policy: fsm.PolicyAuthoritative, Value: fsm.String("Ærwyn <\"x\">"), Version: 1},
		{Name: "none", Policy: fsm.PolicyAuthoritative, Version: 2},
		{Name: "tags", Policy: fsm.PolicySet, Set: []fsm.Value{fsm.Int(3), fsm.String("blue"), fsm.String("gold")}, Version: 8},
		{Name: "worst", Policy: fsm.PolicyMin, Value: fsm.Int(2), Version: 2},
	}}, nil
}

func (g goldenBackend) Hash(world string, seq uint64) (fsm.HashPoint, error) {
	if world != "arena" {
		return g.Fake.Hash(world, seq)
	}
	if seq == 0 {
		seq = 9
	}
	return fsm.HashPoint{Seq: seq, Index: 7, Hash: 0x45e9d67d3e56529d}, nil
}

// goldenSessions are the sessions of arena, sorted by id.
func goldenSessions() []fsm.SessionInfo {
	return []fsm.SessionInfo{
		{World: "arena", ID: "s-alice", Player: "alice", Acked: 8, Opened: 1_700_000_000_128_456_789, Seen: 1_700_000_000_129_456_789, Node: "n1",
			Data: map[string]fsm.Value{"coins": fsm.Int(250), "title": fsm.String("Sir"), "vip": fsm.Bool(true)}, DataVersion: 1_700_000_000_129_456_790},
		{World: "arena", ID: "s-bob", Player: "bob", Acked: 8, Epoch: 1, Opened: 1_700_000_000_128_456_789, Seen: 1_700_000_000_129_456_789, Node: "n1", Kicked: "afk"},
	}
}

func (g goldenBackend) Sessions(world string) ([]fsm.SessionInfo, error) {
	if world != "arena" {
		return g.Fake.Sessions(world)
	}
	return goldenSessions(), nil
}

func (g goldenBackend) Bans(world string) ([]fsm.Ban, error) {
	if world != "arena" {
		return g.Fake.Bans(world)
	}
	return []fsm.Ban{{Player: "dave", Reason: "griefing"}, {Player: "mallory", Reason: "cheating"}}, nil
}

func (g goldenBackend) PlayerData(world string) (map[string]map[string]fsm.Value, error) {
	if world != "arena" {
		return g.Fake.PlayerData(world)
	}
	return map[string]map[string]fsm.Value{
		"alice": {"coins": fsm.Int(250), "title": fsm.String("Sir"), "ratio": fsm.Float(0.5), "vip": fsm.Bool(true)},
		"erin":  {"rank": fsm.Int(3)},
	}, nil
}

// Session answers every session command with a fixed session made from it.
func (g goldenBackend) Session(ctx context.Context, kind fsm.CmdKind, c *fsm.SessionCmd) (fsm.SessionInfo, error) {
	info := fsm.SessionInfo{World: c.World, ID: c.ID, Player: c.Player, Acked: 41, Epoch: 1,
		Opened: 1_700_000_000_128_456_789, Seen: 1_700_000_000_129_456_789, Node: c.Node}
	switch kind {
	case fsm.CmdSessionOpen:
		info.Epoch, info.Replaced = 0, "s-old"
	case fsm.CmdSessionKick:
		info.Kicked = c.Reason
	case fsm.CmdSessionBan:
		info.ID, info.Kicked = "s-bob", "banned: "+c.Reason
	case fsm.CmdSessionUnban:
		info = fsm.SessionInfo{World: c.World, Player: c.Player}
	}
	return info, nil
}

func goldenRules() fsm.Rules {
	var r fsm.Rules
	if err := r.UnmarshalJSON([]byte(`{"strict":true,"fair_window":"30ms","max_lag_compensation":"150ms","fields":{` +
		`"alive":{"type":"bool","policy":"authoritative"},"best":{"type":"float","policy":"max"},"hp":{"type":"int","policy":"counter"},` +
		`"name":{"type":"string","policy":"authoritative"},"tags":{"type":"string","policy":"set"},"worst":{"type":"int","policy":"min"}}}`)); err != nil {
		panic(err)
	}
	return r
}

// goldenActOutcome answers an action by its player: every status, a
// duplicate, and errors.
func goldenActOutcome(ctx context.Context, a *fsm.Action) (*fsm.Event, bool, error) {
	ev := &fsm.Event{World: a.World, Seq: 42, Index: 1007, Time: 1_700_000_000_123_456_789, Player: a.Player,
		ClientSeq: a.Seq, Priority: a.Priority}
	switch a.Player {
	case "alice", "dave":
		ev.Status = fsm.StatusApplied
		ev.Changes = []fsm.Change{
			{Entity: "hero", Field: "name", Op: fsm.OpSet, Value: fsm.String("Ærwyn"), Version: 42},
			{Entity: "hero", Field: "hp", Op: fsm.OpIncr, Value: fsm.Int(83), Version: 42},
			{Entity: "hero", Field: "x", Op: fsm.OpSet, Value: fsm.Float(2.25), Version: 42},
			{Entity: "hero", Field: "alive", Op: fsm.OpSet, Value: fsm.Bool(false), Version: 42},
			{Entity: "hero", Field: "tags", Op: fsm.OpAdd, Value: fsm.String("red"), Version: 42},
			{Entity: "hero", Field: "tags", Op: fsm.OpRemove, Value: fsm.String("blue"), Version: 42},
			{Entity: "chest", Op: fsm.OpDelete, Version: 17},
		}
		return ev, a.Player == "dave", nil
	case "bob":
		ev.Status = fsm.StatusConflict
		ev.Changes = []fsm.Change{
			{Entity: "hero", Field: "tags", Set: []fsm.Value{fsm.Int(1), fsm.String("a")}, Version: 40, Exists: true},
			{Entity: "hero", Field: "name", Value: fsm.String("old"), Version: 12, Exists: true},
			{Entity: "hero", Field: "mana", Exists: false},
		}
	case "carol":
		ev.Status, ev.Reason = fsm.StatusRejected, fsm.CodeTypeMismatch
	case "erin":
		return nil, false, fmt.Errorf("%w: player %s seq %d", fsm.ErrSeqReused, a.Player, a.Seq)
	case "frank":
		return nil, false, store.ErrOutcomeUnknown
	}
	return ev, false, nil
}

// newGoldenEnv serves the golden backend.
func newGoldenEnv(t *testing.T) (*testEnv, *apitest.Fake) {
	t.Helper()
	f := apitest.NewFake()
	require.NoError(t, f.CreateWorld(context.Background(), "arena", fsm.Rules{}))
	f.ActHook = goldenActOutcome
	f.StatusVal = store.Status{ID: "n1", State: "leader", Leader: "n1", LeaderHTTP: "10.0.0.1:8080", Term: 3,
		AppliedIndex: 1007, CommitIndex: 1007, LastIndex: 1008, Region: "eu-west",
		Servers: []store.Server{{ID: "n1", Address: "10.0.0.1:7000", Suffrage: "Voter"}, {ID: "n2", Address: "10.0.0.2:7000", Suffrage: "Nonvoter"}},
		Nodes:   []fsm.NodeInfo{{ID: "n1", RaftAddr: "10.0.0.1:7000", HTTPAddr: "10.0.0.1:8080", Region: "eu-west"}, {ID: "n2", RaftAddr: "10.0.0.2:7000", HTTPAddr: "10.0.0.2:8080"}}}
	return newEnvFor(t, goldenBackend{f}), f
}

// goldenHTTP sends a request and renders its answer for a golden file.
func goldenHTTP(e *testEnv, method, path, body string) []byte {
	e.T.Helper()
	code, h, b := e.Do(method, path, body)
	var sb strings.Builder
	fmt.Fprintf(&sb, "%d\n", code)
	for _, k := range []string{"Allow", "Content-Type", "Retry-After", "WWW-Authenticate"} {
		if v := h.Values(k); len(v) > 0 {
			fmt.Fprintf(&sb, "%s: %s\n", k, strings.Join(v, ", "))
		}
	}
	sb.WriteString("\n")
	sb.Write(b)
	return []byte(sb.String())
}

const goldenAllOps = `"ops":[{"op":"set","entity":"hero","field":"name","value":"Ærwyn","expect":"*"},` +
	`{"op":"incr","entity":"hero","field":"hp","by":-17},{"op":"set","entity":"hero","field":"x","value":2.25,"expect":"41"},` +
	`{"op":"add","entity":"hero","field":"tags","value":"red"},{"op":"remove","entity":"hero","field":"tags","value":"blue"},` +
	`{"op":"delete","entity":"chest","expect":"12"}]`

func TestGoldenHTTPAnswers(t *testing.T) {
	e, f := newGoldenEnv(t)
	action := func(player string, seq int, extra string) string {
		return fmt.Sprintf(`{"player":%q,"seq":%d%s,%s}`, player, seq, extra, goldenAllOps)
	}
	cases := []struct{ name, method, path, body string }{
		{"create_world", "POST", "/v1/worlds", `{"id":"lobby","rules":{"strict":false,"fields":{"hp":{"type":"int","policy":"counter"}}}}`},
		{"list_worlds", "GET", "/v1/worlds", ""},
		{"action_applied", "POST", "/v1/worlds/arena/actions", action("alice", 300, `,"priority":"bulk","input_time":1700000000100000000`)},
		{"action_conflict", "POST", "/v1/worlds/arena/actions", action("bob", 2, "")},
		{"action_rejected", "POST", "/v1/worlds/arena/actions", action("carol", 3, "")},
		{"action_duplicate", "POST", "/v1/worlds/arena/actions", action("dave", 4, "")},
		{"batch", "POST", "/v1/worlds/arena/actions:batch", `{"actions":[` + action("alice", 5, "") + `,` + action("bob", 6, "") + `,` +
			`{"player":"carol","seq":0,"ops":[]},` + action("erin", 7, "") + `,` + action("carol", 8, `,"priority":"bulk"`) + `]}`},
		{"entity", "GET", "/v1/worlds/arena/entities/hero", ""},
		{"entity_stale", "GET", "/v1/worlds/arena/entities/hero?consistency=stale", ""},
		{"hash", "GET", "/v1/worlds/arena/hash", ""},
		{"hash_at_seq", "GET", "/v1/worlds/arena/hash?seq=5", ""},
		{"status", "GET", "/v1/status", ""},
		{"healthz", "GET", "/healthz", ""},
		{"readyz", "GET", "/readyz", ""},
		{"snapshot", "POST", "/v1/cluster/snapshot", ""},
		{"join", "POST", "/v1/cluster/join", `{"id":"n3","raft_addr":"10.0.0.3:7000","http_addr":"10.0.0.3:8080"}`},
		{"presence", "GET", "/v1/worlds/arena/sessions", ""},
		{"bans", "GET", "/v1/worlds/arena/bans", ""},
		{"export", "GET", "/v1/worlds/arena/sessions:export", ""},
		{"kick", "POST", "/v1/worlds/arena/sessions/s-bob/kick", `{"reason":"afk"}`},
		{"ban", "POST", "/v1/worlds/arena/bans", `{"player":"bob","reason":"cheating"}`},
		{"unban", "DELETE", "/v1/worlds/arena/bans/bob", ""},
		{"error_malformed_json", "POST", "/v1/worlds/arena/actions", `{"player":"alice","seq":1,"ops":[`},
		{"error_unknown_key", "POST", "/v1/worlds/arena/actions", `{"player":"alice","seq":1,"bogus":1,"ops":[{"op":"incr","entity":"e","field":"n","by":1}]}`},
		{"error_bad_op", "POST", "/v1/worlds/arena/actions", `{"player":"alice","seq":1,"ops":[{"op":"jump","entity":"e"}]}`},
		{"error_seq_reused", "POST", "/v1/worlds/arena/actions", action("erin", 9, "")},
		{"error_outcome_unknown", "POST", "/v1/worlds/arena/actions", action("frank", 10, "")},
		{"error_unknown_world", "GET", "/v1/worlds/nope/entities/hero?consistency=stale", ""},
		{"error_not_found", "GET", "/v1/worlds/arena/entities/ghost?consistency=stale", ""},
		{"error_world_exists", "POST", "/v1/worlds", `{"id":"arena"}`},
		{"error_bad_consistency", "GET", "/v1/worlds/arena/entities/hero?consistency=eventual", ""},
		{"error_no_route", "GET", "/v2/nothing", ""},
		{"error_method", "PUT", "/v1/worlds", `{}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			golden.Text(t, "http_"+c.name+".txt", goldenHTTP(e.With(t), c.method, c.path, c.body))
		})
	}
	t.Run("error_not_ready", func(t *testing.T) {
		f.ReadyFlag.Store(false)
		defer f.ReadyFlag.Store(true)
		golden.Text(t, "http_error_not_ready.txt", goldenHTTP(e.With(t), "GET", "/readyz", ""))
	})
}

// The node-to-node session command: the body a follower sends for a play
// connection's session command, and the leader's answer on the internal
// endpoint. Not seen by users, but by the other nodes of a cluster in the
// middle of a rolling upgrade.
func TestGoldenInternalSessionCommand(t *testing.T) {
	e, _ := newGoldenEnv(t)
	var h [fsm.TokenHashLen]byte
	for i := range h {
		h[i] = byte(i)
	}
	body, err := goldenJSONBody(wire.SessionCmd{ID: "s-alice", Player: "alice", TokenHash: fmt.Sprintf("%x", h[:]), Seq: 7, Node: "n2"})
	require.NoError(t, err)
	golden.Text(t, "internal_session_open_request.json", body)
	code, hdr, answer := e.Do("POST", "/v1/worlds/arena/sessions/open", string(body), edge.HeaderForwarded, "1")
	require.Equal(t, 200, code, "%s", answer)
	require.Equal(t, "application/json", hdr.Get("Content-Type"))
	golden.Text(t, "internal_session_open_answer.json", answer)
}

// goldenJSONBody is how the edge encodes a request body it sends.
func goldenJSONBody(v any) ([]byte, error) { return json.Marshal(v) }
