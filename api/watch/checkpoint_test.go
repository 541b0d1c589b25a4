package watch

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gsd-dev/gsd/api/internal/apitest"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

// A watcher's keyframe carries the audit checkpoint the node's config
// gives for the keyframe's seq (edge.Config.Checkpoints); a delayed
// watcher's keyframe is at a seq the delay let out, and so is its
// checkpoint.
func TestWatchKeyframesCarryTheCheckpointAtTheirSeq(t *testing.T) {
	st := apitest.StartStore(t)
	rules := fsm.Rules{Fields: map[string]fsm.FieldRule{"score": {Type: fsm.KindInt, Policy: fsm.PolicyCounter}}}
	require.NoError(t, st.CreateWorld(context.Background(), "arena", rules))
	cfg := apitest.Config()
	cfg.Checkpoints = func(world string, seq uint64) []byte {
		if seq == 0 {
			return nil
		}
		return fmt.Appendf(nil, "%s\n%d\n", world, seq)
	}
	core := apitest.Core(t, st, &cfg)
	svc, err := New(core, prometheus.NewRegistry())
	require.NoError(t, err)
	mux := http.NewServeMux()
	svc.Register(mux)
	ts := httptest.NewServer(core.Handler(mux))
	t.Cleanup(func() {
		core.Close()
		svc.Close()
		ts.Close()
	})
	e := &watchEnv{st: st, svc: svc, ts: ts}
	e.hit(t, 1)
	e.hit(t, 2)

	// The pipeline starts from the node's state: its keyframe is at 2.
	k := next(t, e.dial(t, ""), "keyframe", 0)
	require.Equal(t, float64(2), k["seq"])
	require.Equal(t, "arena\n2\n", k["checkpoint"])

	// A watcher joining a delayed view before the delay let anything out
	// gets the keyframe at seq 0: no checkpoint of the 2 events.
	k = next(t, e.dial(t, "?delay=5m"), "keyframe", 0)
	require.Zero(t, k["seq"])
	require.NotContains(t, k, "checkpoint")
}
