package moderation

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/gsd-dev/gsd/anticheat/moderation"
	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/api/internal/apitest"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
)

// world creates id on st, with the ban policy when ban, and returns a
// record of a flag of players found in it.
func flagIn(t *testing.T, e *env, id string, ban bool, players ...string) moderation.Record {
	t.Helper()
	ctx := context.Background()
	var rules fsm.Rules
	if ban {
		rules.Schema.Labels = map[string]string{moderation.PolicyLabel: moderation.PolicyBan}
	}
	require.NoError(t, e.st.CreateWorld(ctx, id, rules))
	wi, err := e.st.World(id)
	require.NoError(t, err)
	rec := moderation.Record{Detector: "aimbot", Players: players, World: id, Incarnation: wi.Incarnation, RaisedBy: "n1", State: moderation.StateOpen,
		Evidence: []moderation.Ref{{World: id, Seq: 1}}}
	rec.ID = moderation.ID(rec.Detector, rec.Players, rec.World, rec.Incarnation)
	created, err := e.api.Raise(ctx, rec)
	require.NoError(t, err)
	require.True(t, created)
	return rec
}

func TestAConfirmationBansOnlyWhereTheWorldsRulesSaySo(t *testing.T) {
	e := newEnv(t)
	mod := token(t, "mia", moderation.Class, false)
	rec := flagIn(t, e, "arena", true, "ann", "bob")
	out := review(t, e, rec.ID, "confirm", `{"reason":"40 ms reactions"}`, mod...)
	require.Equal(t, []string{"ann", "bob"}, out.Banned)
	require.Empty(t, out.PolicyError)
	for _, p := range []string{"ann", "bob"} {
		reason, banned := e.st.Banned("arena", p)
		require.True(t, banned, p)
		require.Equal(t, "anticheat flag "+rec.ID+" (aimbot) confirmed by mia: 40 ms reactions", reason)
	}
	out = review(t, e, rec.ID, "appeal", `{"reason":"lag"}`, mod...)
	require.Empty(t, out.Banned)
	require.Empty(t, out.Unbanned)
	_, banned := e.st.Banned("arena", "ann")
	require.True(t, banned, "an appeal alone lifts nothing")
	out = review(t, e, rec.ID, "dismiss", `{"reason":"lag, confirmed"}`, mod...)
	require.Equal(t, []string{"ann", "bob"}, out.Unbanned)
	_, banned = e.st.Banned("arena", "ann")
	require.False(t, banned, "an appeal granted lifts the ban")

	// Without the label: a record only.
	other := flagIn(t, e, "lobby", false, "cat")
	out = review(t, e, other.ID, "confirm", `{"reason":"r"}`, mod...)
	require.Empty(t, out.Banned)
	_, banned = e.st.Banned("lobby", "cat")
	require.False(t, banned)
}

// On a node that does not lead the flagged world the ban goes to its
// leader's internal ban route (api/peer serves it); a ban that cannot be
// made is named in the answer, and the review stands.
func TestAPolicyBanGoesToTheFlaggedWorldsLeader(t *testing.T) {
	e := newEnv(t)
	var mu sync.Mutex
	var calls []string
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		calls = append(calls, r.Method+" "+r.URL.EscapedPath()+" "+string(b)+" "+r.Header.Get(edge.HeaderClusterKey))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"world":"arena","player":"ann"}`))
	}))
	defer other.Close()
	router := &apitest.TableRouter{Routes: map[string]edge.Route{}}
	router.Set(moderation.World, edge.Route{GroupID: "0", Group: e.st})
	router.Set("arena", edge.Route{GroupID: "1", Node: "n2", Addr: strings.TrimPrefix(other.URL, "http://")})
	node := serve(t, e.st, router)
	mod := token(t, "mia", moderation.Class, false)
	rec := flagIn(t, node, "arena", true, "ann b")

	out := review(t, node, rec.ID, "confirm", `{"reason":"r"}`, mod...)
	require.Equal(t, []string{"ann b"}, out.Banned)
	review(t, node, rec.ID, "appeal", `{"reason":"r"}`, mod...)
	out = review(t, node, rec.ID, "dismiss", `{"reason":"r"}`, mod...)
	require.Equal(t, []string{"ann b"}, out.Unbanned)
	mu.Lock()
	require.Equal(t, []string{
		`POST /internal/v1/worlds/arena/bans {"player":"ann b","reason":"anticheat flag ` + rec.ID + ` (aimbot) confirmed by mia: r"} ` + apitest.Secret,
		"DELETE /internal/v1/worlds/arena/bans/ann%20b  " + apitest.Secret,
	}, calls)
	mu.Unlock()

	// No known leader of the flagged world: the review stands, the answer
	// names what the policy could not do.
	again := flagIn(t, node, "arena2", true, "cat")
	out = review(t, node, again.ID, "confirm", `{"reason":"r"}`, mod...)
	require.Equal(t, "confirmed", out.Flag.State)
	require.Empty(t, out.Banned)
	require.Contains(t, out.PolicyError, "player cat")
	require.Contains(t, out.PolicyError, "no known leader")
}
