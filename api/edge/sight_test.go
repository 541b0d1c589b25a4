package edge_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/api/internal/apitest"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/spectator"
	"github.com/stretchr/testify/require"
)

func sightCore(t *testing.T, auth, secret bool) *edge.Core {
	cfg := apitest.Config()
	if auth {
		cfg.Auth = apitest.Auth()
	}
	if secret {
		cfg.ClusterSecret = []byte(apitest.Secret)
	}
	return apitest.Core(t, apitest.NewFake(), &cfg)
}

func sightReq(query string, hdr ...string) *http.Request {
	r := httptest.NewRequest("GET", "/v1/worlds/w/entities/e?"+query, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	return r
}

func bearer(t *testing.T, player, role string, admin bool) []string {
	tok := apitest.Sign(t, jwt.SigningMethodHS256, apitest.Keys.HS, edge.AdminClaims{RegisteredClaims: apitest.Claims(player), Role: role, Admin: admin})
	return []string{"Authorization", "Bearer " + tok}
}

// Who sees what: a token's role and player, the cluster secret, a
// forwarded call's query only with the secret, the query with auth off.
func TestSightResolvesTheCallerFromItsCredential(t *testing.T) {
	all := edge.Sight{All: true}
	viewer := func(class, player string) edge.Sight {
		return edge.Sight{Viewer: spectator.Viewer{Class: class, Player: player}}
	}
	key := []string{edge.HeaderClusterKey, apitest.Secret}
	fwd := append([]string{edge.HeaderForwarded, "1"}, key...)
	for _, tc := range []struct {
		name         string
		auth, secret bool
		req          *http.Request
		want         edge.Sight
		err          error
	}{
		{"a player's token", true, true, sightReq("player=bob&sight=all", bearer(t, "ann", "", false)...), viewer("", "ann"), nil},
		{"a class its role names", true, true, sightReq("view=ref", bearer(t, "r", "ref", false)...), viewer("ref", "r"), nil},
		{"a class its role does not name", true, true, sightReq("view=ref", bearer(t, "ann", "", false)...), edge.Sight{}, edge.ErrForbidden},
		{"a game server", true, false, sightReq("view=ref", bearer(t, "gs", fsm.RoleServer, false)...), all, nil},
		{"an admin", true, false, sightReq("", bearer(t, "ops", "", true)...), all, nil},
		{"a bad token", true, true, sightReq("", "Authorization", "Bearer x.y.z"), edge.Sight{}, edge.ErrUnauthorized},
		{"no credential with auth on", true, false, sightReq(""), edge.Sight{}, edge.ErrUnauthorized},
		{"the cluster secret", true, true, sightReq("view=ref", key...), all, nil},
		{"a forwarded call for a caller who sees all", true, true, sightReq("sight=all", fwd...), all, nil},
		{"a forwarded call for a viewer", true, true, sightReq("view=ref&player=ann", fwd...), viewer("ref", "ann"), nil},
		{"a forwarded call with the caller's token", true, true, sightReq("sight=all", append(fwd, bearer(t, "ann", "", false)...)...), viewer("", "ann"), nil},
		{"auth off: the query names the viewer", false, true, sightReq("view=ref&player=ann"), viewer("ref", "ann"), nil},
		{"auth off: sight=all needs the secret", false, true, sightReq("sight=all&player=ann", edge.HeaderForwarded, "1"), viewer("", "ann"), nil},
		{"auth off, no secret: nothing is closed", false, false, sightReq("sight=all"), all, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := sightCore(t, tc.auth, tc.secret).Sight(tc.req)
			if tc.err != nil {
				require.ErrorIs(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

// Query carries a resolved sight to the leader, which reads it back.
func TestSightQueryRoundTripsThroughAForwardedCall(t *testing.T) {
	c := sightCore(t, false, true)
	for _, g := range []edge.Sight{{All: true}, {Viewer: spectator.Viewer{Class: "ref", Player: "ann"}}, {}} {
		r := sightReq(g.Query().Encode(), edge.HeaderForwarded, "1", edge.HeaderClusterKey, apitest.Secret)
		got, err := c.Sight(r)
		require.NoError(t, err)
		require.Equal(t, g, got)
	}
}

func TestViewOfSaysWhenToFilter(t *testing.T) {
	a, err := spectator.NewAccess(fsm.Rules{Schema: fsm.Schema{
		Access:  map[string]fsm.FieldAccess{"gold": {Visible: "owner"}},
		Viewers: map[string]fsm.ViewerRule{"caster": {Delay: fsm.Duration(5e9)}},
	}})
	require.NoError(t, err)
	open, err := spectator.NewAccess(fsm.Rules{})
	require.NoError(t, err)
	_, _, filter, err := edge.ViewOf(a, edge.Sight{All: true})
	require.NoError(t, err)
	require.False(t, filter, "everything: no filter")
	_, _, filter, err = edge.ViewOf(open, edge.Sight{Viewer: spectator.Viewer{Player: "ann"}})
	require.NoError(t, err)
	require.False(t, filter, "nothing restricted")
	v, d, filter, err := edge.ViewOf(a, edge.Sight{Viewer: spectator.Viewer{Player: "ann"}})
	require.NoError(t, err)
	require.True(t, filter)
	require.Zero(t, d)
	require.Equal(t, "ann", v.Player())
	_, d, filter, err = edge.ViewOf(a, edge.Sight{Viewer: spectator.Viewer{Class: "caster"}})
	require.NoError(t, err)
	require.True(t, filter)
	require.EqualValues(t, 5e9, d)
	_, _, _, err = edge.ViewOf(a, edge.Sight{Viewer: spectator.Viewer{Class: "nobody"}})
	require.ErrorIs(t, err, fsm.ErrMalformed)
}

// Prepared events under rules version 1 are not seeded with a state read
// after a later rules update (log version 12): they would start past the
// update's event and cut what follows under the old rules. Unseeded, they
// read from the world's start and end at the update's event; under the
// new rules they are seeded and go on.
func TestNewEventsSeedsNoStatePastALaterRulesUpdate(t *testing.T) {
	st := apitest.StartStore(t)
	ctx := t.Context()
	gold := func(visible string) fsm.Rules {
		r := fsm.Rules{Fields: map[string]fsm.FieldRule{"gold": {Type: fsm.KindInt, Policy: fsm.PolicyAuthoritative}}}
		if visible != "" {
			r.Schema.Access = map[string]fsm.FieldAccess{"gold": {Visible: visible}}
		}
		return r
	}
	require.NoError(t, st.CreateWorld(ctx, "w", gold("")))
	set := func(seq uint64) *fsm.Event {
		ev, _, err := st.Act(ctx, &fsm.Action{World: "w", Player: "gm", Seq: seq,
			Ops: []fsm.Op{{Kind: fsm.OpSet, Entity: "ann", Field: "gold", Value: fsm.Int(int64(seq))}}})
		require.NoError(t, err)
		return ev
	}
	set(1)
	vis := edge.NewVisibility(st)
	old, _, err := vis.Access("w")
	require.NoError(t, err)
	require.Equal(t, uint64(1), old.Version())
	_, err = st.UpdateRules(ctx, "w", gold("hidden"), 1)
	require.NoError(t, err)
	set(2) // seq 3
	sub, err := st.Subscribe("w", 3)
	require.NoError(t, err)
	evs, err := sub.Next(ctx)
	require.NoError(t, err)
	_, err = vis.NewEvents(old, "w", true).Prepare(evs[0])
	require.ErrorIs(t, err, spectator.ErrRulesChanged)

	now, _, err := vis.Access("w")
	require.NoError(t, err)
	require.Equal(t, uint64(2), now.Version())
	e := vis.NewEvents(now, "w", true)
	p, err := e.Prepare(set(3))
	require.NoError(t, err, "seeded at seq 3, under the new rules")
	require.Nil(t, e.Event(p, spectator.View{}), "gold is hidden")
}

// The hashes of an incarnation whose rules this node does not know are
// for callers who see everything; the others get the error of an
// incarnation that never was; a credential that does not verify is
// refused as anywhere. Known rules guard as GuardHashes does.
func TestGuardIncarnationHashesLetsOnlyWhoSeesAllReadAnIncarnationOfUnknownRules(t *testing.T) {
	unknown := errors.New("no such incarnation")
	core := func(auth, secret bool) (*edge.Core, *apitest.Fake) {
		cfg := apitest.Config()
		if auth {
			cfg.Auth = apitest.Auth()
		}
		if secret {
			cfg.ClusterSecret = []byte(apitest.Secret)
		}
		b := apitest.NewFake()
		require.NoError(t, b.CreateWorld(context.Background(), "open", fsm.Rules{}))
		require.NoError(t, b.CreateWorld(context.Background(), "hidden", fsm.Rules{Schema: fsm.Schema{Access: map[string]fsm.FieldAccess{"hand": {Visible: "owner"}}}}))
		return apitest.Core(t, b, &cfg), b
	}
	c, _ := core(true, false)
	player, admin := bearer(t, "ann", "", false), bearer(t, "ops", "", true)
	guard := func(world string, inc uint64, hdr ...string) error {
		return c.GuardIncarnationHashes(sightReq("", hdr...), world, inc, "hashes", unknown)
	}
	require.ErrorIs(t, guard("gone", 3, player...), unknown)
	require.ErrorIs(t, guard("open", 3, player...), unknown, "not the current incarnation: its rules are not known")
	require.NoError(t, guard("gone", 3, admin...))
	require.ErrorIs(t, guard("gone", 3), edge.ErrUnauthorized)
	require.NoError(t, guard("open", 0, player...))
	require.ErrorIs(t, guard("hidden", 0, player...), edge.ErrForbidden)
	require.NoError(t, guard("hidden", 0, admin...))

	c, _ = core(false, true) // auth off, a secret: the secret sees all
	require.ErrorIs(t, guard("gone", 3), unknown)
	require.NoError(t, guard("gone", 3, edge.HeaderClusterKey, apitest.Secret))
	c, _ = core(false, false) // nothing closed: anyone may ask for everything
	require.NoError(t, guard("gone", 3))
}
