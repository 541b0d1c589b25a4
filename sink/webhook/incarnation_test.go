package webhook

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/sink/feed"
	"github.com/stretchr/testify/require"
)

// batches is a receiver that keeps every batch it accepts, with the
// incarnation its header names.
type batches struct {
	mu  sync.Mutex
	got []Batch
	bad []string
}

func newBatches(t *testing.T) (*batches, string) {
	b := &batches{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		var bt Batch
		b.mu.Lock()
		defer b.mu.Unlock()
		switch {
		case !Verify(testSecret, body, req.Header.Get(HeaderSignature)) || json.Unmarshal(body, &bt) != nil:
			b.bad = append(b.bad, "bad body")
		case req.Header.Get(HeaderIncarnation) != strconv.FormatInt(bt.Incarnation, 10):
			b.bad = append(b.bad, "incarnation header "+req.Header.Get(HeaderIncarnation))
		default:
			b.got = append(b.got, bt)
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	return b, srv.URL
}

// seqs returns, per incarnation, the seqs received (repeats too, in
// order of arrival), after checking every event is of the batch's world.
func (b *batches) seqs(t *testing.T) map[int64][]uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	require.Empty(t, b.bad)
	out := make(map[int64][]uint64)
	for _, bt := range b.got {
		for _, ev := range bt.Events {
			require.Equal(t, bt.World, ev.World)
			out[bt.Incarnation] = append(out[bt.Incarnation], ev.Seq)
		}
	}
	return out
}

func seqRange(from, to uint64) []uint64 {
	var out []uint64
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

func (b *batches) has(t *testing.T, inc int64, n uint64) func() bool {
	return func() bool { return len(b.seqs(t)[inc]) >= int(n) }
}

func TestExportStartsARecreatedWorldFromSeqOne(t *testing.T) {
	r, url := newBatches(t)
	src := newFakeSource()
	src.Add("a", 10, 1000)
	inc1 := src.Incarnation("a")
	dir := t.TempDir()
	cfg := testConfig(t, url, dir)

	// Re-created while the export follows it: behind the old position,
	// then, stopped, re-created again ahead of it.
	s := startSink(t, cfg, src, nil)
	require.Eventually(t, func() bool { return s.s.Position("a") == 10 }, 20*time.Second, time.Millisecond)
	src.Recreate("a", 4, 2000)
	inc2 := src.Incarnation("a")
	require.Eventually(t, r.has(t, inc2, 4), 20*time.Second, time.Millisecond)
	require.Eventually(t, func() bool { return s.s.Position("a") == 4 }, 20*time.Second, time.Millisecond)
	s.stop()

	src.Recreate("a", 15, 3000)
	inc3 := src.Incarnation("a")
	s = startSink(t, cfg, src, nil)
	require.Eventually(t, r.has(t, inc3, 15), 20*time.Second, time.Millisecond)
	require.Eventually(t, func() bool { return s.s.Position("a") == 15 }, 20*time.Second, time.Millisecond)
	s.stop()

	got := r.seqs(t)
	require.Len(t, got, 3)
	require.Equal(t, seqRange(1, 10), got[inc1])
	require.Equal(t, seqRange(1, 4), got[inc2], "the new incarnation's first events are not skipped")
	require.Equal(t, seqRange(1, 15), got[inc3])
	cp, err := openCheckpoint(dir)
	require.NoError(t, err)
	p, ok := cp.position("a")
	require.True(t, ok)
	require.Equal(t, feed.Position{Incarnation: inc3, Seq: 15}, p)
}

func TestExportAdoptsTheIncarnationForACheckpointWithoutOne(t *testing.T) {
	r, url := newBatches(t)
	src := newFakeSource()
	src.Add("a", 8, 1000)
	inc := src.Incarnation("a")
	dir := t.TempDir()
	// A checkpoint an earlier gsd wrote: positions only.
	require.NoError(t, os.WriteFile(filepath.Join(dir, checkpointFile), []byte(`{"version":1,"positions":{"a":5}}`), 0o600))
	s := startSink(t, testConfig(t, url, dir), src, nil)
	require.Eventually(t, func() bool { return s.s.Position("a") == 8 }, 20*time.Second, time.Millisecond)
	s.stop()
	require.Equal(t, map[int64][]uint64{inc: {6, 7, 8}}, r.seqs(t))
	cp, err := openCheckpoint(dir)
	require.NoError(t, err)
	p, _ := cp.position("a")
	require.Equal(t, feed.Position{Incarnation: inc, Seq: 8}, p)
}

// A checkpoint written this week under the earlier definition names the
// incarnation by event 1's leader time: the world is exported again from
// seq 1 under its creation index, and the checkpoint names that.
func TestExportRestartsACheckpointOfTheEarlierDefinitionFromSeqOne(t *testing.T) {
	r, url := newBatches(t)
	src := newFakeSource()
	src.Add("a", 8, 1000)
	inc := src.Incarnation("a")
	ev1, _ := src.Event("a", 1)
	dir := t.TempDir()
	doc := `{"version":1,"positions":{"a":5},"incarnations":{"a":` + strconv.FormatInt(ev1.Time, 10) + `}}`
	require.NoError(t, os.WriteFile(filepath.Join(dir, checkpointFile), []byte(doc), 0o600))
	s := startSink(t, testConfig(t, url, dir), src, nil)
	require.Eventually(t, func() bool { return s.s.Position("a") == 8 }, 20*time.Second, time.Millisecond)
	s.stop()
	require.Equal(t, map[int64][]uint64{inc: seqRange(1, 8)}, r.seqs(t))
	cp, err := openCheckpoint(dir)
	require.NoError(t, err)
	p, _ := cp.position("a")
	require.Equal(t, feed.Position{Incarnation: inc, Seq: 8}, p)
}

func TestCheckpointReplacesThePositionOfAnotherIncarnation(t *testing.T) {
	dir := t.TempDir()
	cp, err := openCheckpoint(dir)
	require.NoError(t, err)
	require.NoError(t, cp.store("a", feed.Position{Incarnation: 7, Seq: 10}))
	require.NoError(t, cp.store("a", feed.Position{Incarnation: 7, Seq: 3}), "no step back within an incarnation")
	require.NoError(t, cp.store("b", feed.Position{Seq: 2}))
	again, err := openCheckpoint(dir)
	require.NoError(t, err)
	p, _ := again.position("a")
	require.Equal(t, feed.Position{Incarnation: 7, Seq: 10}, p)
	require.NoError(t, again.store("a", feed.Position{Incarnation: 9, Seq: 0}))
	p, _ = again.position("a")
	require.Equal(t, feed.Position{Incarnation: 9}, p, "a new incarnation starts over")
	p, _ = again.position("b")
	require.Equal(t, feed.Position{Seq: 2}, p)
	_, ok := again.position("c")
	require.False(t, ok)
}

// On a real store, a world deleted and created again while the export
// follows it is exported from seq 1 under its new creation index, the
// number GET /v1/worlds lists; the old incarnation's batches keep theirs.
func TestExportOfARealStoreStartsARecreatedWorldFromSeqOne(t *testing.T) {
	r, url := newBatches(t)
	st := newStore(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	act := func(n int) {
		for i := range n {
			_, _, err := st.Act(ctx, &fsm.Action{World: "w", Player: "p", Seq: uint64(i + 1),
				Ops: []fsm.Op{{Kind: fsm.OpIncr, Entity: "e", Field: "n", By: 1}}})
			require.NoError(t, err)
		}
	}
	require.NoError(t, st.CreateWorld(ctx, "w", fsm.Rules{}))
	act(6)
	old, err := st.World("w")
	require.NoError(t, err)
	s := startSink(t, testConfig(t, url, t.TempDir()), feed.NewStoreSource(st), nil)
	require.Eventually(t, r.has(t, int64(old.Incarnation), 6), 20*time.Second, time.Millisecond)

	_, err = st.DeleteWorld(ctx, "w", old.Incarnation)
	require.NoError(t, err)
	require.NoError(t, st.CreateWorld(ctx, "w", fsm.Rules{}))
	act(2)
	cur, err := st.World("w")
	require.NoError(t, err)
	require.Greater(t, cur.Incarnation, old.Incarnation)
	require.Eventually(t, r.has(t, int64(cur.Incarnation), 2), 20*time.Second, time.Millisecond)
	require.Eventually(t, func() bool { return s.s.Position("w") == 2 }, 20*time.Second, time.Millisecond)
	s.stop()
	require.Equal(t, map[int64][]uint64{int64(old.Incarnation): seqRange(1, 6), int64(cur.Incarnation): seqRange(1, 2)}, r.seqs(t))
}
