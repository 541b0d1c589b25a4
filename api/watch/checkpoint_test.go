package watch

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gsd-dev/gsd/api/internal/apitest"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/store"
	"github.com/gsd-dev/gsd/wire"
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
	e := checkpointEnv(t, st, nil)
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

// checkpointEnv serves st's watch route with keyframes given the
// checkpoint "<world>\n<seq>\n" of every seq but 0, and seg, when not
// nil, as its segments' config.
func checkpointEnv(t *testing.T, st *store.Store, seg *SegmentConfig) *watchEnv {
	t.Helper()
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
	if seg != nil {
		require.NoError(t, svc.SetSegments(*seg))
	}
	mux := http.NewServeMux()
	svc.Register(mux)
	ts := httptest.NewServer(core.Handler(mux))
	t.Cleanup(func() {
		core.Close()
		svc.Close()
		ts.Close()
	})
	return &watchEnv{st: st, svc: svc, ts: ts}
}

// Every segment opens with a keyframe that carries the checkpoint of the
// watch keyframe it was built from: at or before the segment's seq.
func TestSegmentKeyframesCarryACheckpointAtOrBeforeTheirSeq(t *testing.T) {
	st := apitest.StartStore(t)
	require.NoError(t, st.CreateWorld(context.Background(), "arena", scoreRules()))
	e := checkpointEnv(t, st, &testSegments)
	e.hit(t, 1)
	e.hit(t, 2)
	e.manifest(t, "") // start cutting: its keyframe is at 2
	var seq uint64
	for i := range 5 {
		seq = e.hit(t, int64(i+1))
	}
	m := e.manifestUpTo(t, "", seq)
	for _, sgm := range m.Segments {
		var k wire.Keyframe
		require.NoError(t, json.Unmarshal(e.segmentLines(t, sgm)[0], &k))
		require.Equal(t, wire.TypeKeyframe, k.Type)
		var size uint64
		_, err := fmt.Sscanf(k.Checkpoint, "arena\n%d\n", &size)
		require.NoError(t, err, "segment %d: %q", sgm.N, k.Checkpoint)
		require.LessOrEqual(t, size, k.Seq, "segment %d", sgm.N)
		require.GreaterOrEqual(t, size, uint64(2), "segment %d", sgm.N)
	}
}
