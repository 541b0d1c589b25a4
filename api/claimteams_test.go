package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// sideClaims is a player's token with the claim "side".
type sideClaims struct {
	jwt.RegisteredClaims
	Side string `json:"side,omitempty"`
}

// With teams from a token claim (teams.from "claim"), a player's team is
// its hello token's claim, recorded with its session's open where every
// node reads it: team fields are cut by it on the leader and on a
// follower alike, whether the hello came to the leader or was forwarded
// to it, and a token without the claim gives no team.
func TestTeamsFromTokenClaimsHoldOnEveryNode(t *testing.T) {
	t.Parallel()
	ln1, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	n1 := startNodeOn(t, "n1", true, ln1, withAuth)
	require.Eventually(t, n1.st.LeaderReady, 10*time.Second, 10*time.Millisecond)
	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	n2 := startNodeOn(t, "n2", false, ln2, withAuth)
	admin := roleToken(t, "ops", "", true)
	v := n2.st.Versions()
	join := fmt.Sprintf(`{"id":"n2","raft_addr":%q,"http_addr":%q,"versions":{"log":%d,"snapshot":%d,"wire":%d}}`,
		n2.raftAddr, n2.env.TS.Listener.Addr().String(), v.Log, v.Snapshot, v.Wire)
	code, _, b := n1.env.Do("POST", "/v1/cluster/join", join, "Authorization", admin)
	require.Equal(t, http.StatusOK, code, "%s", b)
	require.Eventually(t, func() bool {
		_, addr := n2.st.Leader()
		return addr == n1.env.TS.Listener.Addr().String()
	}, 10*time.Second, 10*time.Millisecond)
	// The rules need log version 10 of every voter: n2 reported it in
	// its join.
	code, _, b = n1.env.Do("POST", "/v1/worlds", `{"id":"fog","rules":{"fields":{
		"plan":{"type":"string","policy":"authoritative","visible":"team"}},
		"teams":{"from":"claim","key":"side"}}}`, "Authorization", admin)
	require.Equal(t, http.StatusCreated, code, "%s", b)

	token := func(player, side string) string {
		return sign(t, jwt.SigningMethodHS256, keys.HS, sideClaims{RegisteredClaims: claims(player), Side: side})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	hello := func(n *node, tok string) {
		c, _, err := websocket.Dial(ctx, n.env.WSURL("fog"), &websocket.DialOptions{Subprotocols: []string{wire.SubprotocolJSON}})
		require.NoError(t, err)
		t.Cleanup(func() { c.CloseNow() })
		msg, _ := json.Marshal(map[string]any{"type": "hello", "token": tok})
		require.NoError(t, c.Write(ctx, websocket.MessageText, msg))
		_, b, err := c.Read(ctx)
		require.NoError(t, err)
		require.Contains(t, string(b), `"welcome"`)
	}
	hello(n1, token("ann", "red"))  // on the leader
	hello(n2, token("bob", "red"))  // forwarded to it
	hello(n2, token("cat", "blue")) // forwarded, another team
	hello(n2, token("dan", ""))     // no claim: no team

	code, _, b = n1.env.Do("POST", "/v1/worlds/fog/actions", `{"seq":1,"ops":[{"op":"set","entity":"ann","field":"plan","value":"rush"}]}`,
		"Authorization", "Bearer "+token("ann", "red"))
	require.Equal(t, http.StatusOK, code, "%s", b)
	for _, n := range []*node{n1, n2} {
		for player, sees := range map[string]bool{"ann": true, "bob": true, "cat": false, "dan": false} {
			tok := "Bearer " + token(player, "")
			require.Eventually(t, func() bool {
				code, m := n.env.DoJSON("GET", "/v1/worlds/fog/entities/ann?consistency=stale", "", "Authorization", tok)
				if !sees {
					require.NotEqual(t, http.StatusOK, code, "%s reads ann's plan: %v", player, m)
					return code == http.StatusNotFound
				}
				return code == http.StatusOK && m["fields"].(map[string]any)["plan"] != nil
			}, 10*time.Second, 10*time.Millisecond, "%s on %s", player, n.st.Status().ID)
		}
	}

	// The team is the session's: a new hello without the claim ends it.
	hello(n2, token("bob", ""))
	require.Eventually(t, func() bool {
		code, _ := n2.env.DoJSON("GET", "/v1/worlds/fog/entities/ann?consistency=stale", "", "Authorization", "Bearer "+token("bob", ""))
		return code == http.StatusNotFound
	}, 10*time.Second, 10*time.Millisecond)
}
