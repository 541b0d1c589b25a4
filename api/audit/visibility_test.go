package audit

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/gsd-dev/gsd/anticheat/audit"
	"github.com/gsd-dev/gsd/anticheat/audit/auditor"
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

// An incarnation whose rules this node no longer knows (deleted, or its
// world deleted) may have had hidden fields: its audit reads are for
// callers who see everything, and the others get the answer of an
// incarnation that never was (404 unknown_world, word for word), so they
// do not learn that it existed. An incarnation whose rules the node knows
// is guarded by them.
func TestAuditReadsOfAnIncarnationOfUnknownRulesNeedACallerWhoSeesAll(t *testing.T) {
	const secret = "0123456789abcdef0123456789abcdef"
	e := newEnv(t, true, secret)
	old, err := audit.OpenIncarnation("arena", 3, &audit.MemStore{})
	require.NoError(t, err)
	require.NoError(t, old.Append(events("arena", 4)...))
	e.logs.old = map[string]*audit.Log{"arena#3": old}
	require.NoError(t, e.backend.CreateWorld(context.Background(), "arena", fsm.Rules{})) // incarnation 0, open
	paths := func(inc uint64) []string {
		q := fmt.Sprintf("incarnation=%d", inc)
		return []string{"checkpoint?" + q, "proof?seq=1&" + q, "consistency?from=1&" + q, "leaves?" + q}
	}
	noTree := func(inc uint64, path string, headers ...string) {
		t.Helper()
		code, _, b := e.Do("GET", "/v1/worlds/arena/audit/"+path, "", headers...)
		require.Equal(t, http.StatusNotFound, code, "%s: %s", path, b)
		require.Contains(t, string(b), fsm.CodeUnknownWorld)
		require.Contains(t, string(b), auditor.NoTree("arena", inc).Error(), path)
	}
	ok := func(path string, headers ...string) {
		t.Helper()
		code, _, b := e.Do("GET", "/v1/worlds/arena/audit/"+path, "", headers...)
		require.Equal(t, http.StatusOK, code, "%s: %s", path, b)
	}
	for _, path := range paths(3) { // deleted: its rules are gone
		noTree(3, path)
		ok(path, edge.HeaderClusterKey, secret)
	}
	for _, path := range paths(9) { // never was: the same answer, with the secret or without
		noTree(9, path)
		noTree(9, path, edge.HeaderClusterKey, secret)
	}
	for _, path := range paths(0) { // the current incarnation: its rules restrict nothing
		ok(path)
	}

	// The world deleted: its last incarnation's rules are gone too.
	_, err = e.backend.DeleteWorld(context.Background(), "arena", 0)
	require.NoError(t, err)
	for _, path := range paths(0) {
		noTree(0, path)
		ok(path, edge.HeaderClusterKey, secret)
	}

	// A copy a group holds after a move knows its incarnation's rules.
	e.backend.Mu.Lock()
	e.backend.Held = map[string]fsm.WorldInfo{"arena": {ID: "arena", Incarnation: 3, Moved: &fsm.Fence{World: "arena", Shard: 2, Seq: 4}}}
	e.backend.Mu.Unlock()
	for _, path := range paths(3) {
		ok(path)
	}
	for _, path := range paths(0) { // not the held copy's incarnation
		noTree(0, path)
	}
}
