package audit

import (
	"context"
	"net/http"
	"testing"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
)

// In a world that restricts fields the audit hashes are for callers who
// see everything: a hidden value could be guessed from a leaf hash.
func TestAuditReadsOfAWorldWithHiddenFieldsNeedACallerWhoSeesAll(t *testing.T) {
	const secret = "0123456789abcdef0123456789abcdef"
	for name, tc := range map[string]struct {
		rules fsm.Rules
		code  int
	}{
		"restricted":  {fsm.Rules{Schema: fsm.Schema{Access: map[string]fsm.FieldAccess{"hand": {Visible: "owner"}}}}, http.StatusForbidden},
		"open":        {fsm.Rules{}, http.StatusOK},
		"bad to this": {fsm.Rules{Schema: fsm.Schema{Access: map[string]fsm.FieldAccess{"hand": {Visible: "sometimes"}}}}, http.StatusInternalServerError},
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, true, secret)
			require.NoError(t, e.backend.CreateWorld(context.Background(), "arena", tc.rules))
			for _, path := range []string{"checkpoint", "proof?seq=1", "consistency?from=1", "leaves"} {
				code, _, b := e.Do("GET", "/v1/worlds/arena/audit/"+path, "")
				require.Equal(t, tc.code, code, "%s: %s", path, b)
				if tc.code == http.StatusForbidden {
					code, _, b = e.Do("GET", "/v1/worlds/arena/audit/"+path, "", edge.HeaderClusterKey, secret)
					require.Equal(t, http.StatusOK, code, "%s with the secret: %s", path, b)
				}
			}
		})
	}
}

// A world that moved to a group this node does not run is not listed,
// but the node keeps its audit tree up to the move (?incarnation=N) and
// a group of it holds the fenced copy: its rules guard that tree too.
func TestAuditReadsOfAMovedWorldWithHiddenFieldsNeedACallerWhoSeesAll(t *testing.T) {
	const secret = "0123456789abcdef0123456789abcdef"
	e := newEnv(t, true, secret)
	e.backend.Mu.Lock()
	e.backend.Held = map[string]fsm.WorldInfo{"arena": {ID: "arena", Moved: &fsm.Fence{World: "arena", Shard: 2, Seq: 10},
		Rules: fsm.Rules{Schema: fsm.Schema{Access: map[string]fsm.FieldAccess{"hand": {Visible: "owner"}}}}}}
	e.backend.Mu.Unlock()
	for _, path := range []string{"checkpoint?incarnation=0", "proof?seq=1&incarnation=0", "leaves?incarnation=0"} {
		code, _, b := e.Do("GET", "/v1/worlds/arena/audit/"+path, "")
		require.Equal(t, http.StatusForbidden, code, "%s: %s", path, b)
		code, _, b = e.Do("GET", "/v1/worlds/arena/audit/"+path, "", edge.HeaderClusterKey, secret)
		require.Equal(t, http.StatusOK, code, "%s with the secret: %s", path, b)
	}
}
