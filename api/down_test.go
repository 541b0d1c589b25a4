package api

import (
	"context"
	"fmt"
	"testing"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/api/internal/apitest"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/store"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// downFake is a backend that marks nodes down.
type downFake struct {
	shardFake
	asked []wire.NodesDown
	err   error
}

func (f *downFake) MarkNodesDown(_ context.Context, d wire.NodesDown) error {
	f.asked = append(f.asked, d)
	return f.err
}

func TestTheDownRouteMarksNodesDown(t *testing.T) {
	t.Parallel()
	f := &downFake{shardFake: shardFake{Fake: apitest.NewFake()}}
	e := newEnvFor(t, f, withSecret)
	admin := []string{edge.HeaderClusterKey, testSecret}

	code, _, b := e.Do("POST", wire.PathShardNodesDown, `{"nodes":["n3","n4"]}`, admin...)
	require.Equal(t, 204, code, "%s", b)
	require.Equal(t, []wire.NodesDown{{Nodes: []string{"n3", "n4"}}}, f.asked)

	e.RequireError(400, fsm.CodeMalformed, "POST", wire.PathShardNodesDown, `{"nodes":[]}`, admin...)
	e.RequireError(400, fsm.CodeMalformed, "POST", wire.PathShardNodesDown, `{"nodes":[""]}`, admin...)
	e.RequireError(400, fsm.CodeMalformed, "POST", wire.PathShardNodesDown, `{"nodes":["n3"],"colour":1}`, admin...)
	e.RequireError(401, edge.CodeUnauthorized, "POST", wire.PathShardNodesDown, `{"nodes":["n3"]}`)
	require.Len(t, f.asked, 1, "nothing bad reaches the backend")
	for code, err := range map[int]error{
		409: fmt.Errorf(`mark: %w: node "n3" answers: it is not down`, edge.ErrConflict),
		404: fmt.Errorf("mark: %w: no node", fsm.ErrNotFound),
	} {
		f.err = err
		got, _, b := e.Do("POST", wire.PathShardNodesDown, `{"nodes":["n3"]}`, admin...)
		require.Equal(t, code, got, "%s", b)
	}
	f.err = fmt.Errorf("mark: %w", store.ErrVersionGate)
	e.RequireError(409, "version_gate", "POST", wire.PathShardNodesDown, `{"nodes":["n3"]}`, admin...)

	static := newEnvFor(t, shardFake{Fake: apitest.NewFake()})
	static.RequireError(422, fsm.CodeNotSupported, "POST", wire.PathShardNodesDown, `{"nodes":["n3"]}`)
}

// Adding a node cannot set its down mark: only the down route does.
func TestAddingANodeCannotMarkItDown(t *testing.T) {
	t.Parallel()
	f := &editFake{shardFake: shardFake{Fake: apitest.NewFake()}}
	e := newEnvFor(t, f, withSecret)
	e.RequireError(400, fsm.CodeMalformed, "POST", wire.PathShardNodes, `{"id":"n4","raft":"h:1","http":"h:2","down":true}`,
		edge.HeaderClusterKey, testSecret)
}
