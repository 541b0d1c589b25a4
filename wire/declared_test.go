package wire

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPreconditionsReadAndWriteBothForms(t *testing.T) {
	var p []Precondition
	require.NoError(t, json.Unmarshal([]byte(`["true",{"name":"n","expr":"false"}]`), &p))
	require.Equal(t, []Precondition{{Expr: "true"}, {Name: "n", Expr: "false"}}, p)
	b, err := json.Marshal(p)
	require.NoError(t, err)
	require.Equal(t, `["true",{"name":"n","expr":"false"}]`, string(b))
	for _, bad := range []string{`[{"name":"n","expr":"true","x":1}]`, `[{"expr":"true"}]`, `[{"name":"` + strings.Repeat("n", MaxNameLen+1) + `","expr":"true"}]`, `[7]`} {
		require.ErrorIs(t, json.Unmarshal([]byte(bad), &p), ErrMalformed, bad)
	}
}
