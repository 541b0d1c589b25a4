package loadgen

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const stagesText = `# HELP gsd_play_stage_seconds x
# TYPE gsd_play_stage_seconds histogram
gsd_play_stage_seconds_bucket{stage="write",le="0.001"} 50
gsd_play_stage_seconds_bucket{stage="write",le="0.01"} 90
gsd_play_stage_seconds_bucket{stage="write",le="0.1"} 100
gsd_play_stage_seconds_bucket{stage="write",le="+Inf"} 100
gsd_play_stage_seconds_sum{stage="write"} 1
gsd_play_stage_seconds_count{stage="write"} 100
gsd_play_stage_seconds_bucket{stage="act",le="0.001"} 0
gsd_play_stage_seconds_bucket{stage="act",le="+Inf"} 4
`

func TestStageHistogramsFromTheNodesMetrics(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, stagesText)
	}))
	defer srv.Close()
	h, err := scrapeStages(context.Background(), srv.Client(), []string{srv.URL, strings.TrimPrefix(srv.URL, "http://")})
	require.NoError(t, err)
	require.Equal(t, 200.0, h["write"][0.1], "summed over the nodes")

	d := h.since(stageHists{"write": {0.001: 50, 0.01: 90, 0.1: 100, math.Inf(1): 100}})
	require.Equal(t, 50.0, d["write"][0.001])
	v, ok := quantile(d["write"], 0.5)
	require.True(t, ok)
	require.InDelta(t, 0.001, v, 1e-9, "half of 100 at the first bound")
	v, _ = quantile(h["write"], 0.95)
	require.InDelta(t, 0.01+0.09*0.5, v, 1e-9, "interpolated within its bucket")
	v, _ = quantile(h["act"], 0.99)
	require.Equal(t, 0.001, v, "past the last finite bound: that bound")
	_, ok = quantile(map[float64]float64{}, 0.5)
	require.False(t, ok)
	_, ok = quantile(h.since(h)["act"], 0.5)
	require.False(t, ok, "no new observations")

	r := newResult("x")
	h.into(r)
	require.InDelta(t, 1.0, r.Figures["stage_write_p50_ms"], 1e-9)
	require.Contains(t, r.Figures, "stage_act_p99_ms")

	for _, bad := range []string{
		`gsd_play_stage_seconds_bucket{stage="a",le="x"} 1`,
		`gsd_play_stage_seconds_bucket{stage="a",le="1"} y`,
		`gsd_play_stage_seconds_bucket{stage="a",le="1"}`,
	} {
		_, err := stageHists{}.add(bad)
		require.Error(t, err, bad)
	}
	_, err = scrapeStages(context.Background(), srv.Client(), []string{"http://127.0.0.1:1"})
	require.Error(t, err)
}
