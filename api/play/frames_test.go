package play

import (
	"encoding/json"
	"strconv"
	"testing"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

func TestAppendJSONStringWritesWhatJSONMarshalDoes(t *testing.T) {
	for _, s := range []string{"", "p1", "a b", `q"uote`, `back\slash`, "<tag>&", "tab\there", "nl\n", "\x7f", "é", "\u2028", "\xff\xfe", "emoji 🙂"} {
		b := wire.AppendJSONString(nil, s)
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != string(want) {
			t.Errorf("wire.AppendJSONString(%q) = %s, json.Marshal: %s", s, b, want)
		}
	}
	rapid.Check(t, func(t *rapid.T) {
		s := rapid.OneOf(rapid.String(), rapid.StringMatching(`[ -~]{0,12}`), rapid.Map(rapid.SliceOfN(rapid.Byte(), 0, 8), func(b []byte) string { return string(b) })).Draw(t, "s")
		b := wire.AppendJSONString([]byte("x"), s) // a buffer that holds something already
		want, _ := json.Marshal(s)
		if string(b) != "x"+string(want) {
			t.Fatalf("wire.AppendJSONString(%q) = %s, json.Marshal: %s", s, b[1:], want)
		}
	})
}

// A delta's entities keep each field's latest value once, sorted by name,
// whatever order the changes come in, and leave and whole enter messages
// drop entities from it: encodeDelta writes what json.Marshal writes for
// the same changes kept in maps.
func TestDeltaKeepsEachFieldsLatestValueInOrder(t *testing.T) {
	type field struct {
		Value   json.RawMessage `json:"value"`
		Version uint64          `json:"version"`
	}
	type entity struct {
		Deleted uint64           `json:"deleted,omitempty"`
		Fields  map[string]field `json:"fields"`
	}
	rapid.Check(t, func(t *rapid.T) {
		o := newOutbox(1000, codecJSON)
		want := map[string]*entity{}
		n := rapid.IntRange(1, 30).Draw(t, "n")
		ids := []string{"p1", "p2", "rock", "tree"}
		for i := range n {
			switch rapid.IntRange(0, 9).Draw(t, "op") {
			case 0: // a leave message drops what it names
				gone := rapid.SliceOfDistinct(rapid.SampledFrom(ids), func(id string) string { return id }).Draw(t, "gone")
				require.True(t, o.leave(&sharedMsg{leave: &wire.Leave{IDs: gone}}, true))
				for _, id := range gone {
					delete(want, id)
				}
				continue
			case 1: // a whole enter drops what it does not list
				listed := rapid.SliceOfDistinct(rapid.SampledFrom(ids), func(id string) string { return id }).Draw(t, "listed")
				k := &wire.Keyframe{Whole: true, Entities: map[string]wire.WatchEntity{}}
				for _, id := range listed {
					k.Entities[id] = wire.WatchEntity{}
				}
				require.True(t, o.enter(&sharedMsg{enter: k}, true))
				for id := range want {
					if _, ok := k.Entities[id]; !ok {
						delete(want, id)
					}
				}
				continue
			}
			id := rapid.SampledFrom(ids).Draw(t, "entity")
			name := rapid.SampledFrom([]string{"", "x", "y", "hp", "aa", "zz", "name"}).Draw(t, "field")
			ver := rapid.Uint64Range(1, 20).Draw(t, "version")
			v := []byte(strconv.Itoa(i))
			o.merge(&hubEvent{ev: &fsm.Event{Seq: uint64(i + 1)}, delta: []deltaChange{{entity: id, field: name, version: ver, value: v, v: fsm.Int(int64(i))}}})
			e := want[id]
			if e == nil {
				e = &entity{Fields: map[string]field{}}
				want[id] = e
			}
			if name == "" {
				e.Deleted, e.Fields = ver, map[string]field{}
				continue
			}
			if f, ok := e.Fields[name]; !ok || ver >= f.Version {
				e.Fields[name] = field{Value: v, Version: ver}
			}
		}
		_, copied, _ := o.pending()
		ents, err := json.Marshal(want)
		require.NoError(t, err)
		wantFrame := `{"type":"delta","from":1,"seq":9,"tick":3,"entities":` + string(ents) + `}`
		require.Equal(t, wantFrame, string(encodeDelta(1, 9, 3, o.delta)))
		require.Equal(t, wantFrame, string(encodeDelta(1, 9, 3, copied)), "the pending delta's copy")
		for _, e := range copied { // the copy shares no memory with the stream's delta
			e.ed.set(&deltaChange{entity: "x", field: "a", version: 99, value: []byte("0")})
		}
		require.Equal(t, wantFrame, string(encodeDelta(1, 9, 3, o.delta)), "the stream's delta after its copy changed")
	})
}
