package edge

import (
	"encoding/json"
	"testing"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
)

func TestSessionJSONCarriesEveryFieldBothWays(t *testing.T) {
	in := fsm.SessionInfo{World: "w", ID: "s1", Player: "ann", Acked: 3, Epoch: 2, Opened: 10, Seen: 20,
		Replaced: "s0", Node: "n1", Kicked: "afk", Data: map[string]fsm.Value{"gold": fsm.Int(5)}, DataVersion: 1700000000000000001}
	j := ToSessionJSON(in)
	require.Equal(t, in, SessionInfoOf(j))
	b, err := json.Marshal(j)
	require.NoError(t, err)
	require.Contains(t, string(b), `"data_version":1700000000000000001`)
}
