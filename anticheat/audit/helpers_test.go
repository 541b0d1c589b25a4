package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/tlog"
)

// events returns n events of world, seqs 1 to n, with varied content.
func events(world string, n int) []*wire.Event {
	out := make([]*wire.Event, n)
	for i := range out {
		seq := uint64(i) + 1
		v := wire.Int(int64(i * 7))
		out[i] = &wire.Event{
			World: world, Seq: seq, Index: seq + 10, Time: 1_800_000_000_000 + int64(i),
			Player: fmt.Sprintf("p%d", i%5), ClientSeq: uint64(i/5) + 1,
			Priority: wire.PriorityNameCritical, Status: wire.StatusApplied,
			Versions: map[string]map[string]uint64{fmt.Sprintf("e%d", i%3): {"hp": seq}},
			Changes:  []wire.Change{{Entity: fmt.Sprintf("e%d", i%3), Field: "hp", Op: "set", Value: &v, Version: seq}},
		}
	}
	return out
}

// newLog returns a log of world holding n events, and the events.
func newLog(t testing.TB, world string, n int) (*Log, []*wire.Event) {
	t.Helper()
	l, err := Open(world, &MemStore{})
	require.NoError(t, err)
	evs := events(world, n)
	require.NoError(t, l.Append(evs...))
	return l, evs
}

// export returns the NDJSON lines of evs as the event stream writes them.
func export(t testing.TB, evs []*wire.Event) [][]byte {
	t.Helper()
	out := make([][]byte, len(evs))
	for i, e := range evs {
		b, err := json.Marshal(e)
		require.NoError(t, err)
		out[i] = b
	}
	return out
}

func ndjson(lines [][]byte) *bytes.Reader {
	return bytes.NewReader(append(bytes.Join(lines, []byte("\n")), '\n'))
}

// failingStore fails the calls it is told to.
type failingStore struct {
	MemStore
	count, read, appendErr error
	short                  bool // ReadHashes returns one hash too few
}

func (f *failingStore) Count() (int64, error) {
	if f.count != nil {
		return 0, f.count
	}
	return f.MemStore.Count()
}

func (f *failingStore) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	if f.read != nil {
		return nil, f.read
	}
	h, err := f.MemStore.ReadHashes(idx)
	if f.short && len(h) > 0 {
		h = h[1:]
	}
	return h, err
}

func (f *failingStore) AppendHashes(start int64, hs []tlog.Hash) error {
	if f.appendErr != nil {
		return f.appendErr
	}
	return f.MemStore.AppendHashes(start, hs)
}
