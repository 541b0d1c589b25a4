package play

import (
	"context"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/gsd-dev/gsd/api/internal/apitest"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
)

// goldRules declares gold; gold shows as visible says and trap as trap
// says ("": to all).
func goldRules(visible, trap string) fsm.Rules {
	r := fsm.Rules{Fields: map[string]fsm.FieldRule{
		"gold": {Type: fsm.KindString, Policy: fsm.PolicyAuthoritative},
		"trap": {Type: fsm.KindString, Policy: fsm.PolicyAuthoritative},
	}}
	for f, v := range map[string]string{"gold": visible, "trap": trap} {
		if v != "" {
			if r.Schema.Access == nil {
				r.Schema.Access = map[string]fsm.FieldAccess{}
			}
			r.Schema.Access[f] = fsm.FieldAccess{Visible: v}
		}
	}
	return r
}

// TestPlayHubSwitchesRulesAtTheUpdatesEvent: the world's hub (the world
// restricts nothing) and a view's hub (it restricts trap) meet an update
// that hides gold, then actions that write it: the connection gets
// nothing of gold after the update and goes away (resume) there, though
// the rules poll still answers the old version (an hour's TTL). Resumed,
// its hub cuts under the new rules.
func TestPlayHubSwitchesRulesAtTheUpdatesEvent(t *testing.T) {
	for name, trap := range map[string]string{"world hub": "", "view hub": "hidden"} {
		t.Run(name, func(t *testing.T) {
			st := apitest.StartStore(t)
			require.NoError(t, st.CreateWorld(context.Background(), "fog", goldRules("", trap)))
			env := newEnvFor(t, st, fastPlay)
			env.srv.vis.SetRulesTTL(time.Hour)
			c := dialPlay(t, env.WSURL("fog"))
			welcome(t, c, "cat")
			fogSet(t, st, 1, false, "ann", "gold", fsm.String("open-gold"))
			require.Contains(t, readUpTo(t, c, 1), "open-gold")

			v, err := st.UpdateRules(context.Background(), "fog", goldRules("owner", trap), 1)
			require.NoError(t, err)
			require.Equal(t, uint64(2), v)
			for i := range 10 {
				fogSet(t, st, uint64(i+2), false, "ann", "gold", fsm.String("secret-gold"))
			}
			for {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				_, b, err := c.Read(ctx)
				cancel()
				if err != nil {
					require.Equal(t, websocket.StatusGoingAway, websocket.CloseStatus(err), "%v", err)
					break
				}
				require.NotContains(t, string(b), "secret-gold")
			}

			c = dialPlay(t, env.WSURL("fog"))
			welcome(t, c, "cat")
			fogSet(t, st, 100, false, "clock", "tick", fsm.Int(1))
			require.NotContains(t, readUpTo(t, c, 13), "secret-gold")
		})
	}
}
