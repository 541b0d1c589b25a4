package api

import (
	"context"
	"fmt"
	"testing"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/api/internal/apitest"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// replaceFake is a backend that replaces voters.
type replaceFake struct {
	shardFake
	asked []wire.VoterReplace
	err   error
}

func (f *replaceFake) ReplaceVoter(_ context.Context, shard uint64, r wire.VoterReplace) (wire.VoterReplaced, error) {
	f.asked = append(f.asked, r)
	return wire.VoterReplaced{Shard: shard, Old: r.Old, New: "n4", Voters: []string{"n2", "n3", "n4"}}, f.err
}

func TestTheReplaceRouteListsAVoterReplacement(t *testing.T) {
	t.Parallel()
	f := &replaceFake{shardFake: shardFake{Fake: apitest.NewFake()}}
	e := newEnvFor(t, f, withSecret)
	admin := []string{edge.HeaderClusterKey, testSecret}

	code, _, b := e.Do("POST", wire.PathShardReplace(7), `{"old":"n1"}`, admin...)
	require.Equal(t, 200, code, "%s", b)
	require.JSONEq(t, `{"shard":7,"old":"n1","new":"n4","voters":["n2","n3","n4"]}`, string(b))
	require.Equal(t, []wire.VoterReplace{{Old: "n1"}}, f.asked)

	e.RequireError(400, fsm.CodeMalformed, "POST", wire.PathShardReplace(7), `{"new":"n4"}`, admin...)
	e.RequireError(400, fsm.CodeMalformed, "POST", wire.PathShards+"/x/replace", `{"old":"n1"}`, admin...)
	e.RequireError(400, fsm.CodeMalformed, "POST", wire.PathShardReplace(7), `{"old":"n1","colour":1}`, admin...)
	e.RequireError(401, edge.CodeUnauthorized, "POST", wire.PathShardReplace(7), `{"old":"n1"}`)
	f.err = fmt.Errorf("replace: %w", edge.ErrConflict)
	e.RequireError(409, edge.CodeConflict, "POST", wire.PathShardReplace(7), `{"old":"n1"}`, admin...)

	static := newEnvFor(t, shardFake{Fake: apitest.NewFake()})
	static.RequireError(422, fsm.CodeNotSupported, "POST", wire.PathShardReplace(1), `{"old":"n1"}`)
}
