package audit

import (
	"encoding/json"
	"testing"

	"github.com/gsd-dev/gsd/anticheat/audit"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/tlog"
)

func TestAnIncarnationIsChosenByTheIncarnationParameter(t *testing.T) {
	e := newEnv(t, true, "")
	old, err := audit.OpenIncarnation("arena", 3, &audit.MemStore{})
	require.NoError(t, err)
	evs := events("arena", 4)
	evs[0].Player = "someone else" // another match than the current one's
	require.NoError(t, old.Append(evs...))
	e.logs.old = map[string]*audit.Log{"arena#3": old}

	// Without the parameter: the current incarnation, as before.
	require.Equal(t, int64(10), e.checkpoint().Size)
	code, _, b := e.Do("GET", "/v1/worlds/arena/audit/checkpoint?incarnation=0", "")
	require.Equal(t, 200, code, "%s", b)
	cp, _, err := audit.OpenCheckpoint(b, e.pub)
	require.NoError(t, err)
	require.Equal(t, e.checkpoint(), cp)

	// The deleted one: its tombstone, and proofs from its tree.
	code, _, b = e.Do("GET", "/v1/worlds/arena/audit/checkpoint?incarnation=3", "")
	require.Equal(t, 200, code, "%s", b)
	tomb, _, err := audit.OpenCheckpoint(b, e.pub)
	require.NoError(t, err)
	require.True(t, tomb.Tombstone)
	require.Equal(t, uint64(3), tomb.Incarnation)
	require.Equal(t, int64(4), tomb.Size)
	code, _, b = e.Do("GET", "/v1/worlds/arena/audit/proof?seq=1&incarnation=3", "")
	require.Equal(t, 200, code, "%s", b)
	var p wire.AuditProof
	require.NoError(t, json.Unmarshal(b, &p))
	proof := make(tlog.RecordProof, len(p.Proof))
	for i := range p.Proof {
		proof[i] = tlog.Hash(p.Proof[i])
	}
	require.NoError(t, audit.CheckInclusion(tomb, evs[0], proof))
	require.Error(t, audit.CheckInclusion(e.checkpoint(), evs[0], proof), "not the current tree's event")
	code, h, _ := e.Do("GET", "/v1/worlds/arena/audit/leaves?incarnation=3", "")
	require.Equal(t, 200, code)
	require.Equal(t, "4", h.Get("Gsd-Audit-To"))
	code, _, b = e.Do("GET", "/v1/worlds/arena/audit/consistency?from=2&incarnation=3", "")
	require.Equal(t, 200, code, "%s", b)

	for _, path := range []string{"checkpoint?incarnation=x", "proof?seq=1&incarnation=-1", "leaves?incarnation=1.5"} {
		e.RequireError(400, fsm.CodeMalformed, "GET", "/v1/worlds/arena/audit/"+path, "")
	}
	for _, path := range []string{"checkpoint?incarnation=9", "proof?seq=1&incarnation=9", "leaves?incarnation=9"} {
		e.RequireError(404, fsm.CodeUnknownWorld, "GET", "/v1/worlds/arena/audit/"+path, "")
	}
}
