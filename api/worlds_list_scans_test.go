package api

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/gsd-dev/gsd/api/internal/apitest"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// scanCounter counts the backend's reads of every world.
type scanCounter struct {
	*apitest.Fake
	scans atomic.Int64
}

func (s *scanCounter) Worlds() []fsm.WorldInfo {
	s.scans.Add(1)
	return s.Fake.Worlds()
}

// GET /v1/worlds reads the node's worlds once, not once more per world
// listed: with the hash guard (issue 13) each world's summary looked its
// rules up by id through a read of every world, so a listing cost
// worlds² (a public route; 10,000 worlds a node is a target).
func TestListWorldsReadsTheWorldsOnce(t *testing.T) {
	t.Parallel()
	b := &scanCounter{Fake: apitest.NewFake()}
	fog := fsm.Rules{Schema: fsm.Schema{Access: map[string]fsm.FieldAccess{"trap": {Visible: "hidden"}}}}
	const n = 50
	for i := range n {
		rules := fsm.Rules{}
		if i%2 == 0 {
			rules = fog
		}
		require.NoError(t, b.CreateWorld(context.Background(), fmt.Sprintf("w%02d", i), rules))
	}
	e := newEnvFor(t, b)
	before := b.scans.Load()
	code, _, body := e.Do("GET", "/v1/worlds", "")
	require.Equal(t, 200, code, "%s", body)
	scans := b.scans.Load() - before
	var out wire.Worlds
	require.NoError(t, json.Unmarshal(body, &out))
	require.Len(t, out.Worlds, n)
	for i, w := range out.Worlds {
		require.Equal(t, i%2 == 1, w.Hash != "", "world %s: a hash only where nothing is restricted", w.ID)
	}
	require.LessOrEqual(t, scans, int64(2), "reads of every world for one listing of %d", n)
}
