package api

import (
	"context"
	"fmt"
	"testing"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/api/internal/apitest"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
)

// placeFake is a backend that places new worlds (gsd --meta's).
type placeFake struct {
	*apitest.Fake
	listed map[string]bool
	placed []string
	err    error
}

func (f *placeFake) Listed(world string) bool { return f.listed[world] }

func (f *placeFake) PlaceNew(_ context.Context, world string) (uint64, error) {
	f.placed = append(f.placed, world)
	return 3, f.err
}

func TestCreateWorldPlacesANewUnlistedWorldOnly(t *testing.T) {
	t.Parallel()
	f := &placeFake{Fake: apitest.NewFake(), listed: map[string]bool{"listed": true}}
	e := newEnvFor(t, f)
	code, _, b := e.Do("POST", "/v1/worlds", `{"id":"fresh"}`)
	require.Equal(t, 201, code, "%s", b)
	require.Equal(t, []string{"fresh"}, f.placed)
	e.RequireError(409, fsm.CodeWorldExists, "POST", "/v1/worlds", `{"id":"fresh"}`)
	require.Equal(t, []string{"fresh"}, f.placed, "an existing world is not placed anew")
	code, _, b = e.Do("POST", "/v1/worlds", `{"id":"listed"}`)
	require.Equal(t, 201, code, "%s", b)
	code, _, b = e.Do("POST", "/v1/worlds", `{"id":"fwd"}`, edge.HeaderForwarded, "1")
	require.Equal(t, 201, code, "%s", b)
	require.Equal(t, []string{"fresh"}, f.placed, "listed or forwarded: no placement")

	f.err = fmt.Errorf("place: %w", edge.ErrConflict)
	e.RequireError(409, edge.CodeConflict, "POST", "/v1/worlds", `{"id":"refused"}`)
	f.err = nil
	f.EntityErr = fmt.Errorf("%w: disk", edge.ErrInternal)
	e.RequireError(500, edge.CodeInternal, "POST", "/v1/worlds", `{"id":"unknown"}`)
	require.Equal(t, []string{"fresh", "refused"}, f.placed, "no placement when existence is unknown")
}
