package api

import (
	"context"
	"net/http"
	"strconv"
	"testing"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/api/internal/apitest"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// withSlowLimit lets each player two actions and then one per 1000 s:
// within a test, nothing refills.
func withSlowLimit(c *Config) { c.PlayerRate, c.PlayerBurst = 0.001, 2 }

func TestAPlayerOverTheRateLimitIsRefused429BeforeTheLog(t *testing.T) {
	t.Parallel()
	fake := apitest.NewFake()
	require.NoError(t, fake.CreateWorld(context.Background(), "arena", fsm.Rules{}))
	e := newEnv(t, fake, withSlowLimit)
	for seq := 1; seq <= 2; seq++ {
		code, _, b := e.Do("POST", "/v1/worlds/arena/actions", actBody("ann", seq))
		require.Equal(t, http.StatusOK, code, "%s", b)
	}
	code, h, b := e.Do("POST", "/v1/worlds/arena/actions", actBody("ann", 3))
	require.Equal(t, http.StatusTooManyRequests, code, "%s", b)
	require.Contains(t, string(b), edge.CodeRateLimited)
	after, err := strconv.Atoi(h.Get("Retry-After"))
	require.NoError(t, err)
	require.Greater(t, after, 900, "the wait until the bucket has a token")
	require.Equal(t, 2, fake.Acts, "nothing proposed")

	// Another player has a bucket of its own; a batch takes one token per
	// action and refuses only the items over the limit.
	_, m := e.DoJSON("POST", "/v1/worlds/arena/actions:batch", `{"actions":[`+actBody("bob", 1)+`,`+actBody("bob", 2)+`,`+actBody("bob", 3)+`]}`)
	res := m["results"].([]any)
	require.Equal(t, "applied", res[0].(map[string]any)["status"])
	require.Equal(t, "applied", res[1].(map[string]any)["status"])
	require.Equal(t, edge.CodeRateLimited, res[2].(map[string]any)["code"])
	require.Equal(t, 2.0, testutil.ToFloat64(e.srv.Metrics().RateLimited.WithLabelValues("http")))

	// A forwarded action was admitted by the node that forwarded it.
	code, _, b = e.Do("POST", edge.InternalActPath("arena"), actBody("ann", 4), edge.HeaderForwarded, "1")
	require.Equal(t, http.StatusOK, code, "%s", b)
}
