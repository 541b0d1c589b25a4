package edge

import (
	"testing"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
)

func TestDeclaredActionsDecodeWithTheirParamsSortedByName(t *testing.T) {
	a, err := DecodeAction([]byte(`{"player":"ann","seq":1,"action":"move","params":{"y":2,"x":1.5,"to":"orc7"}}`), "arena", Identity{})
	require.NoError(t, err)
	require.Equal(t, "move", a.Name)
	require.Equal(t, []fsm.Param{{Name: "to", Value: fsm.String("orc7")}, {Name: "x", Value: fsm.Float(1.5)}, {Name: "y", Value: fsm.Int(2)}}, a.Params)
	require.Empty(t, a.Ops)
	_, err = DecodeAction([]byte(`{"player":"ann","seq":1,"action":"move","ops":[{"op":"set","entity":"e","field":"f","value":1}]}`), "arena", Identity{})
	require.ErrorIs(t, err, fsm.ErrMalformed, "a declared action carries no ops")
	_, err = DecodeAction([]byte(`{"player":"ann","seq":1,"params":{"x":1}}`), "arena", Identity{})
	require.ErrorIs(t, err, fsm.ErrMalformed, "params need an action")
}
