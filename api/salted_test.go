package api

import (
	"testing"

	"github.com/gsd-dev/gsd/anticheat/audit"
	"github.com/gsd-dev/gsd/api/internal/apitest"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
)

// TestAWorldCreatedWithAuditLeaf2SaltsItsPlayers: POST /v1/worlds with
// "audit_leaf":2 creates a salted world; a player's first action there
// draws its salt; other values are refused, and a backend without salts
// says so.
func TestAWorldCreatedWithAuditLeaf2SaltsItsPlayers(t *testing.T) {
	t.Parallel()
	n := startLeader(t)
	e := n.env
	code, m := e.DoJSON("POST", "/v1/worlds", `{"id":"arena","rules":{},"audit_leaf":2}`)
	require.Equal(t, 201, code, "%v", m)
	code, m = e.DoJSON("POST", "/v1/worlds", `{"id":"plain","rules":{},"audit_leaf":1}`)
	require.Equal(t, 201, code, "%v", m)
	e.RequireError(400, fsm.CodeMalformed, "POST", "/v1/worlds", `{"id":"x","rules":{},"audit_leaf":3}`)
	e.RequireError(400, fsm.CodeMalformed, "POST", "/v1/worlds", `{"id":"x","rules":{},"audit_leaf":-1}`)

	wi, err := n.st.World("arena")
	require.NoError(t, err)
	require.True(t, wi.Salted)
	wi, err = n.st.World("plain")
	require.NoError(t, err)
	require.False(t, wi.Salted)

	code, m = e.DoJSON("GET", "/v1/worlds/arena", "")
	require.Equal(t, 200, code)
	require.Equal(t, float64(2), m["audit_leaf"], "the summary says the leaves are salted")
	code, m = e.DoJSON("GET", "/v1/worlds/plain", "")
	require.Equal(t, 200, code)
	require.NotContains(t, m, "audit_leaf")

	code, m = e.DoJSON("POST", "/v1/worlds/arena/actions", `{"player":"alice","seq":1,"ops":[{"op":"incr","entity":"e","field":"hp","by":1}]}`)
	require.Equal(t, 200, code, "%v", m)
	salts, _, err := n.st.Salts("arena")
	require.NoError(t, err)
	require.Len(t, salts, 1)
	require.Equal(t, "alice", salts[0].Player)

	fake := newEnv(t, apitest.NewFake())
	fake.RequireError(422, fsm.CodeNotSupported, "POST", "/v1/worlds", `{"id":"arena","rules":{},"audit_leaf":2}`)
}

// noLogs is a node's audit logs that hold no world: the salt routes need
// none.
type noLogs struct{}

func (noLogs) Log(string) (*audit.Log, error)              { return nil, fsm.ErrUnknownWorld }
func (noLogs) Checkpoint(string) ([]byte, error)           { return nil, fsm.ErrUnknownWorld }
func (noLogs) Sign(string) ([]byte, error)                 { return nil, fsm.ErrUnknownWorld }
func (noLogs) LogOf(string, uint64) (*audit.Log, error)    { return nil, fsm.ErrUnknownWorld }
func (noLogs) CheckpointOf(string, uint64) ([]byte, error) { return nil, fsm.ErrUnknownWorld }
func (noLogs) SignSalts(audit.SaltsNote) ([]byte, error)   { return nil, fsm.ErrUnknownWorld }

// TestAFollowerRelaysTheSaltRoutesToTheLeader: both run on the leader,
// whose answer (here: its groups keep no salts) comes back as it is.
func TestAFollowerRelaysTheSaltRoutesToTheLeader(t *testing.T) {
	t.Parallel()
	leader, follower := newPair(t, func(c *Config) { c.Audit = noLogs{} })
	follower.RequireError(422, fsm.CodeNotSupported, "GET", "/v1/worlds/arena/audit/salts", "")
	follower.RequireError(422, fsm.CodeNotSupported, "DELETE", "/v1/worlds/arena/audit/salts/p1", "")
	follower.RequireError(422, fsm.CodeNotSupported, "GET", "/v1/worlds/arena/audit/salts?signed=1", "")
	require.Equal(t, 3, leader.Fake.Forwarded)
}
