package wire

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// manyKeys returns n distinct keys of 2 to 37 bytes (so with fixstr and
// str 8 heads), in no particular order.
func manyKeys(prefix string, n int) []string {
	keys := make([]string, n)
	for i := range keys {
		k := fmt.Sprintf("%s%d", prefix, (i*7919)%1000)
		keys[i] = k + strings.Repeat("z", (i*13)%34)
	}
	return keys
}

// canonicalPlayMessages are the play protocol's messages that hold maps,
// each with many keys: a welcome's data, an event's versions (in a result
// and in an events frame), a delta frame's entities and fields as a
// client decodes them, and a map[string]any.
func canonicalPlayMessages() map[string]any {
	data := map[string]Value{}
	for i, k := range manyKeys("d", 60) {
		switch i % 4 {
		case 0:
			data[k] = Int(int64(i) - 30)
		case 1:
			data[k] = Float(float64(i) / 4)
		case 2:
			data[k] = String(k)
		default:
			data[k] = Bool(i%2 == 0)
		}
	}
	versions := map[string]map[string]uint64{}
	for i, e := range manyKeys("e", 24) {
		fields := map[string]uint64{}
		for j, f := range manyKeys("f", 12) {
			fields[f] = uint64(i*100 + j)
		}
		versions[e] = fields
	}
	ev := Event{World: "arena", Seq: 42, Index: 1007, Time: 1_700_000_000, Player: "alice", ClientSeq: 300,
		Priority: "critical", Status: "applied", Versions: versions,
		Changes: []Change{{Entity: "hero", Field: "hp", Op: "incr", Value: &Value{Kind: KindInt, Int: 83}, Version: 42}}}
	entities := map[string]DeltaEntity{}
	for i, e := range manyKeys("n", 24) {
		fields := map[string]DeltaField{}
		for j, f := range manyKeys("g", 12) {
			fields[f] = DeltaField{Value: Int(int64(j)), Version: uint64(i + j)}
		}
		entities[e] = DeltaEntity{Deleted: uint64(i % 2), Fields: fields}
	}
	anyMap := map[string]any{}
	for _, k := range manyKeys("a", 40) {
		anyMap[k] = map[string]any{"s": k, "long-key": strings.ToUpper(k)}
	}
	return map[string]any{
		"welcome": Welcome{Type: TypeWelcome, Session: "s1", ResumeToken: "rt", World: "arena", Player: "alice", Seq: 41,
			Data: data, UDP: &UDPInfo{Addr: "10.0.0.1:9000", KeyID: "k", Key: "kk"}, Nodes: []string{"http://n2"}},
		"result": Result{Type: TypeResult, Seq: 300, Event: &ev},
		"events": Events{Type: TypeEvents, From: 40, Seq: 42, Events: []Event{ev, ev}},
		"delta":  ServerMsg{Type: TypeDelta, Seq: 42, From: 40, Tick: 7, Entities: entities, Data: data},
		"any":    anyMap,
	}
}

// requireCanonicalMsgpack walks b with the msgpack library's decoder and
// fails unless every map's encoded keys, at any depth, strictly increase
// bytewise: the one canonical order of a map's entries.
func requireCanonicalMsgpack(t *testing.T, b []byte) {
	t.Helper()
	d := msgpack.NewDecoder(bytes.NewReader(b))
	var walk func(path string)
	walk = func(path string) {
		c, err := d.PeekCode()
		require.NoError(t, err, path)
		switch {
		case msgpcode.IsFixedMap(c) || c == msgpcode.Map16 || c == msgpcode.Map32:
			n, err := d.DecodeMapLen()
			require.NoError(t, err, path)
			var prev []byte
			for i := range n {
				k, err := d.DecodeRaw()
				require.NoError(t, err, path)
				if i > 0 {
					require.Negative(t, bytes.Compare(prev, k), "%s: key %q after %q", path, k, prev)
				}
				prev = k
				walk(path + "." + string(k))
			}
		case msgpcode.IsFixedArray(c) || c == msgpcode.Array16 || c == msgpcode.Array32:
			n, err := d.DecodeArrayLen()
			require.NoError(t, err, path)
			for i := range n {
				walk(fmt.Sprintf("%s[%d]", path, i))
			}
		default:
			require.NoError(t, d.Skip(), path)
		}
	}
	walk("")
	_, err := d.PeekCode()
	require.Error(t, err, "one value, nothing after it")
}

func TestMarshalMsgpackOfEveryPlayMapIsCanonicalAndTheSameEveryTime(t *testing.T) {
	for name, msg := range canonicalPlayMessages() {
		t.Run(name, func(t *testing.T) {
			first, err := MarshalMsgpack(msg)
			require.NoError(t, err)
			for range 50 {
				again, err := MarshalMsgpack(msg)
				require.NoError(t, err)
				require.Equal(t, first, again, "one message, one encoding")
			}
			requireCanonicalMsgpack(t, first)
			// Only the order moved: the bytes decode to the message.
			got := newOf(msg)
			require.NoError(t, UnmarshalMsgpack(first, got))
			require.Equal(t, msg, deref(got))
		})
	}
}

func newOf(v any) any {
	switch v.(type) {
	case Welcome:
		return new(Welcome)
	case Result:
		return new(Result)
	case Events:
		return new(Events)
	case ServerMsg:
		return new(ServerMsg)
	}
	return new(map[string]any)
}

func deref(p any) any {
	switch p := p.(type) {
	case *Welcome:
		return *p
	case *Result:
		return *p
	case *Events:
		return *p
	case *ServerMsg:
		return *p
	}
	return *p.(*map[string]any)
}
