package play

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"
	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// patchData writes a player's data on n and decodes the answer.
func patchData(t *testing.T, n *node, world, player, body string, hdr ...string) wire.PlayerData {
	t.Helper()
	code, _, b := n.env.Do("PATCH", "/v1/worlds/"+world+"/players/"+player+"/data", body, hdr...)
	require.Equal(t, http.StatusOK, code, "%s", b)
	var d wire.PlayerData
	require.NoError(t, json.Unmarshal(b, &d))
	return d
}

// A game server merges keys into a player's data through any node: set,
// delete, keep the rest; each write answers the new data version, an
// expected version that is not the player's changes nothing (409), and
// every node's export holds the same data and version.
func TestGameServerWritesPlayerDataThroughAnyNodeWithExpectedVersions(t *testing.T) {
	nodes := startPlayCluster(t, 2, fastPlay)
	l, f := nodes[0], nodes[1]
	l.env.Do("POST", "/v1/worlds", arenaBody)

	d := patchData(t, f, "arena", "ann", `{"data":{"gold":40,"title":"knight","vip":true}}`)
	require.Equal(t, wire.PlayerData{World: "arena", Player: "ann",
		Data: map[string]wire.Value{"gold": wire.Int(40), "title": wire.String("knight"), "vip": wire.Bool(true)}, DataVersion: d.DataVersion}, d)
	require.Positive(t, d.DataVersion)
	v1 := d.DataVersion

	d = patchData(t, l, "arena", "ann", fmt.Sprintf(`{"data":{"gold":41,"vip":null},"expect_version":%d}`, v1))
	require.Equal(t, map[string]wire.Value{"gold": wire.Int(41), "title": wire.String("knight")}, d.Data)
	require.Greater(t, d.DataVersion, v1)
	v2 := d.DataVersion

	// A stale expected version, on either node: 409, nothing changes.
	for _, n := range nodes {
		m := n.env.RequireError(http.StatusConflict, fsm.CodeDataConflict, "PATCH", "/v1/worlds/arena/players/ann/data",
			fmt.Sprintf(`{"data":{"gold":0},"expect_version":%d}`, v1))
		require.Contains(t, m["error"], fmt.Sprint(v2))
	}
	for _, n := range nodes {
		file := exportOf(t, n, "arena")
		require.Equal(t, []wire.PlayerDataRecord{{Player: "ann", Data: map[string]wire.Value{"gold": wire.Int(41), "title": wire.String("knight")}, DataVersion: v2}}, file.Players)
	}
	// The player finds it in the welcome.
	c := dialPlay(t, f.env.WSURL("arena"))
	require.Equal(t, map[string]any{"gold": float64(41), "title": "knight"}, welcome(t, c, "ann")["data"])

	many := make([]string, fsm.MaxSessionData+1)
	for i := range many {
		many[i] = fmt.Sprintf(`"k%d":1`, i)
	}
	for what, body := range map[string]string{
		"bad json":      `{"data":`,
		"unknown key":   `{"data":{"a":1},"expect":1}`,
		"no keys":       `{"data":{}}`,
		"no body":       ``,
		"bad key":       `{"data":{"":1}}`,
		"long value":    `{"data":{"a":"` + strings.Repeat("x", fsm.MaxStringLen+1) + `"}}`,
		"too many keys": `{"data":{` + strings.Join(many, ",") + `}}`,
	} {
		m := f.env.RequireError(http.StatusBadRequest, fsm.CodeMalformed, "PATCH", "/v1/worlds/arena/players/ann/data", body)
		require.NotEmpty(t, m["error"], what)
	}
	l.env.RequireError(http.StatusBadRequest, fsm.CodeMalformed, "PATCH", "/v1/worlds/arena/players/"+strings.Repeat("p", fsm.MaxNameLen+1)+"/data", `{"data":{"a":1}}`)
	l.env.RequireError(http.StatusNotFound, fsm.CodeUnknownWorld, "PATCH", "/v1/worlds/nowhere/players/ann/data", `{"data":{"a":1}}`)
	f.env.RequireError(http.StatusNotFound, fsm.CodeUnknownWorld, "PATCH", "/v1/worlds/nowhere/players/ann/data", `{"data":{"a":1}}`)
}

// exportOf reads world's players' data file from n.
func exportOf(t *testing.T, n *node, world string, hdr ...string) wire.PlayerDataFile {
	t.Helper()
	code, _, b := n.env.Do("GET", "/v1/worlds/"+world+"/sessions:export", "", hdr...)
	require.Equal(t, http.StatusOK, code, "%s", b)
	var file wire.PlayerDataFile
	require.NoError(t, json.Unmarshal(b, &file))
	return file
}

// With auth on, a game server's or admin's token writes players' data; a
// player's token, even for their own data, is forbidden, and no token is
// unauthorized. With auth off and a cluster secret, the secret is needed.
func TestPlayerDataWriteRouteNeedsAServerOrAdminToken(t *testing.T) {
	n := startLeaderWith(t, fastPlay, withAuth)
	bearer := func(player, role string, admin bool) string {
		return "Bearer " + sign(t, jwt.SigningMethodHS256, keys.HS, edge.AdminClaims{RegisteredClaims: claims(player), Role: role, Admin: admin})
	}
	code, _, b := n.env.Do("POST", "/v1/worlds", arenaBody, "Authorization", bearer("ops", "", true))
	require.Equal(t, http.StatusCreated, code, "%s", b)
	path := "/v1/worlds/arena/players/ann/data"
	n.env.RequireError(http.StatusForbidden, edge.CodeForbidden, "PATCH", path, `{"data":{"gold":1}}`, "Authorization", bearer("ann", "", false))
	n.env.RequireError(http.StatusUnauthorized, edge.CodeUnauthorized, "PATCH", path, `{"data":{"gold":1}}`)
	require.Empty(t, exportOf(t, n, "arena", "Authorization", bearer("ops", "", true)).Players, "nothing was written")
	require.Equal(t, map[string]wire.Value{"gold": wire.Int(2)}, patchData(t, n, "arena", "ann", `{"data":{"gold":2}}`, "Authorization", bearer("gs1", fsm.RoleServer, false)).Data)
	require.Equal(t, map[string]wire.Value{"gold": wire.Int(3)}, patchData(t, n, "arena", "ann", `{"data":{"gold":3}}`, "Authorization", bearer("ops", "", true)).Data)

	s := startLeaderWith(t, fastPlay, withSecret)
	s.env.Do("POST", "/v1/worlds", arenaBody)
	s.env.RequireError(http.StatusUnauthorized, edge.CodeUnauthorized, "PATCH", path, `{"data":{"gold":1}}`)
	require.Equal(t, map[string]wire.Value{"gold": wire.Int(1)}, patchData(t, s, "arena", "ann", `{"data":{"gold":1}}`, edge.HeaderClusterKey, testSecret).Data)
}

// loadoutArena lets players write loadout and settings of their own data.
const loadoutArena = `{"id":"arena","rules":{"fields":{"score":{"type":"int","policy":"counter"}},"player_data":{"player_writable":["loadout","settings"]}}}`

// wsData sends a data message and returns its answer (other messages in
// between are skipped).
func wsData(t *testing.T, c *websocket.Conn, msg map[string]any) map[string]any {
	t.Helper()
	msg["type"] = "data"
	wsSend(t, c, msg)
	for {
		if m := wsRecv(t, c); m["type"] == "data" {
			require.EqualValues(t, fmt.Sprint(msg["seq"]), fmt.Sprint(m["seq"]), "the answer names the message's seq")
			return m
		}
	}
}

// A player writes the player-writable keys of their own data over play,
// on the leader and through a follower; a message with any other key,
// naming another player, with too many keys or a stale expected version
// is refused whole with its code, and the connection stays.
func TestPlayDataMessageWritesOnlyTheOwnPlayersWritableKeys(t *testing.T) {
	nodes := startPlayCluster(t, 2, fastPlay)
	l := nodes[0]
	code, _, b := l.env.Do("POST", "/v1/worlds", loadoutArena)
	require.Equal(t, http.StatusCreated, code, "%s", b)
	patchData(t, l, "arena", "ann", `{"data":{"gold":40}}`) // a game server's key

	for i, n := range nodes {
		player := []string{"ann", "bob"}[i]
		c := dialPlay(t, n.env.WSURL("arena"))
		welcome(t, c, player)
		m := wsData(t, c, map[string]any{"seq": 1, "data": map[string]any{"loadout": "sniper", "settings": "dark"}})
		require.Nil(t, m["code"], "%v", m)
		require.Positive(t, m["data_version"])
		// Versions are leader times in ns, past float64's exact integers:
		// read it exactly from the export.
		v1 := recordOf(t, exportOf(t, n, "arena"), player).DataVersion
		require.Positive(t, v1)

		refused := map[string]struct {
			msg  map[string]any
			code string
		}{
			"a key the rules do not list": {map[string]any{"data": map[string]any{"loadout": "rail", "gold": 1e6}}, fsm.CodeForbidden},
			"another player's data":       {map[string]any{"player": "carl", "data": map[string]any{"loadout": "rail"}}, edge.CodeForbidden},
			"stale expected version":      {map[string]any{"expect_version": v1 + 1, "data": map[string]any{"loadout": "rail"}}, fsm.CodeDataConflict},
			"no keys":                     {map[string]any{"data": map[string]any{}}, fsm.CodeMalformed},
			"too many keys":               {map[string]any{"data": manyData(fsm.MaxSessionData + 1)}, fsm.CodeMalformed},
			"a long value":                {map[string]any{"data": map[string]any{"loadout": strings.Repeat("x", fsm.MaxStringLen+1)}}, fsm.CodeMalformed},
		}
		seq := 2
		for what, r := range refused {
			r.msg["seq"] = seq
			seq++
			m := wsData(t, c, r.msg)
			require.Equal(t, r.code, m["code"], "%s: %v", what, m)
			require.NotEmpty(t, m["error"], what)
			require.Nil(t, m["data"], what)
		}
		// Nothing of the refused messages applied, and the connection
		// still writes: a delete with the expected version.
		m = wsData(t, c, map[string]any{"seq": seq, "expect_version": v1, "data": map[string]any{"settings": nil}})
		require.Nil(t, m["code"], "%v", m)
		want := map[string]any{"loadout": "sniper"}
		if player == "ann" {
			want["gold"] = float64(40)
		}
		require.Equal(t, want, m["data"], player)
		require.Greater(t, recordOf(t, exportOf(t, n, "arena"), player).DataVersion, v1)
	}
	for _, n := range nodes {
		require.Equal(t, []wire.PlayerDataRecord{
			{Player: "ann", Data: map[string]wire.Value{"gold": wire.Int(40), "loadout": wire.String("sniper")}},
			{Player: "bob", Data: map[string]wire.Value{"loadout": wire.String("sniper")}},
		}, withoutVersions(exportOf(t, n, "arena").Players))
		recs, err := n.st.PlayerRecords("arena")
		require.NoError(t, err)
		require.Len(t, recs, 2)
	}
	// The internal session op carries only a player's own write: without
	// the session or the player (a game server's write of any key) it is
	// refused, and nothing changes.
	for _, body := range []string{`{"id":"","player":"ann","data":{"gold":1}}`, `{"id":"s1","data":{"gold":1}}`} {
		l.env.RequireError(http.StatusBadRequest, fsm.CodeMalformed, "POST", edge.InternalSessionPath("arena", "data"), body, edge.HeaderForwarded, "1")
	}
	require.Equal(t, wire.Int(40), recordOf(t, exportOf(t, l, "arena"), "ann").Data["gold"])
}

// recordOf returns player's record of a data file.
func recordOf(t *testing.T, f wire.PlayerDataFile, player string) wire.PlayerDataRecord {
	t.Helper()
	for _, r := range f.Players {
		if r.Player == player {
			return r
		}
	}
	t.Fatalf("no data of %s in %v", player, f.Players)
	return wire.PlayerDataRecord{}
}

// manyData returns n keys, each 1.
func manyData(n int) map[string]any {
	m := make(map[string]any, n)
	for i := range n {
		m[fmt.Sprintf("k%d", i)] = 1
	}
	return m
}

// withoutVersions drops the records' versions (they are leader times).
func withoutVersions(recs []wire.PlayerDataRecord) []wire.PlayerDataRecord {
	for i := range recs {
		recs[i].DataVersion = 0
	}
	return recs
}

// The data message in the binary subprotocol: the same keys, types kept.
func TestPlayDataMessageOverMsgpack(t *testing.T) {
	n := startLeaderWith(t, fastPlay)
	n.env.Do("POST", "/v1/worlds", loadoutArena)
	c := dialProtocols(t, n.env.WSURL("arena"), MsgpackSubprotocol)
	mpSend(t, c, map[string]any{"type": "hello", "player": "ann"})
	require.Equal(t, "welcome", mpRecv(t, c)["type"])
	mpSend(t, c, map[string]any{"type": "data", "seq": 7, "data": map[string]any{"loadout": "sniper", "settings": int64(3)}})
	m := mpRecvType(t, c, "data")
	require.EqualValues(t, 7, toU64(t, m["seq"]))
	require.Nil(t, m["code"], "%v", m)
	require.Positive(t, toU64(t, m["data_version"]))
	d := m["data"].(map[string]any)
	require.Equal(t, "sniper", d["loadout"])
	require.EqualValues(t, 3, toU64(t, d["settings"]), "an int stays an int")

	mpSend(t, c, map[string]any{"type": "data", "seq": 8, "data": map[string]any{"gold": int64(1)}})
	m = mpRecvType(t, c, "data")
	require.Equal(t, fsm.CodeForbidden, m["code"])
	require.EqualValues(t, 403, toU64(t, m["status"]))
	require.Equal(t, []wire.PlayerDataRecord{{Player: "ann", Data: map[string]wire.Value{"loadout": wire.String("sniper"), "settings": wire.Int(3)}}},
		withoutVersions(exportOf(t, n, "arena").Players))
}

// With auth on, the forwarded data command carries the player's token and
// the leader checks it names the same player; a player's token writes
// through a follower.
func TestPlayDataMessageWithAuthThroughAFollower(t *testing.T) {
	nodes := startPlayCluster(t, 2, fastPlay, withAuth)
	l, f := nodes[0], nodes[1]
	admin := "Bearer " + sign(t, jwt.SigningMethodHS256, keys.HS, edge.AdminClaims{RegisteredClaims: claims("ops"), Admin: true})
	code, _, b := l.env.Do("POST", "/v1/worlds", loadoutArena, "Authorization", admin)
	require.Equal(t, http.StatusCreated, code, "%s", b)
	c := dialPlay(t, f.env.WSURL("arena"))
	wsSend(t, c, map[string]any{"type": "hello", "token": sign(t, jwt.SigningMethodHS256, keys.HS, claims("ann"))})
	require.Equal(t, "welcome", wsRecv(t, c)["type"])
	m := wsData(t, c, map[string]any{"seq": 1, "data": map[string]any{"loadout": "sniper"}})
	require.Nil(t, m["code"], "%v", m)
	require.Equal(t, map[string]any{"loadout": "sniper"}, m["data"])
	m = wsData(t, c, map[string]any{"seq": 2, "player": "bob", "data": map[string]any{"loadout": "sniper"}})
	require.Equal(t, edge.CodeForbidden, m["code"])
}
