package play

import (
	"context"
	"testing"

	"github.com/gsd-dev/gsd/api/internal/apitest"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
)

// A field's quantum is the precision spectators get: players see it
// whole, in their keyframe and in their stream, moves within the quantum
// included.
func TestPlayersSeeAQuantisedFieldAtFullPrecision(t *testing.T) {
	st := apitest.StartStore(t)
	rules := fsm.Rules{Fields: map[string]fsm.FieldRule{"x": {Type: fsm.KindFloat, Policy: fsm.PolicyAuthoritative}},
		Schema: fsm.Schema{Access: map[string]fsm.FieldAccess{"x": {Quantum: 0.5}}}}
	require.NoError(t, st.CreateWorld(context.Background(), "fog", rules))
	env := newEnvFor(t, st, fastPlay)
	fogSet(t, st, 1, false, "ann", "x", fsm.Float(10.3))
	c := dialPlay(t, env.WSURL("fog"))
	_, kf := keyframeHello(t, c, "ann")
	require.Equal(t, map[string]map[string]any{"ann": {"x": 10.3}}, fields(t, kf))
	fogSet(t, st, 2, true, "ann", "x", fsm.Float(10.6))
	require.Contains(t, readUpTo(t, c, 2), "10.6")
}
