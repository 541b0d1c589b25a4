package play

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

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
