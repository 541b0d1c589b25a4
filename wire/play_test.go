package wire

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// jsonFields maps a struct type's JSON keys to their Go types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := make(map[string]reflect.Type)
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		out[name] = f.Type
	}
	return out
}

func TestServerMsgHoldsEveryKeyOfEveryServerMessage(t *testing.T) {
	union := jsonFields(reflect.TypeFor[ServerMsg]())
	for _, msg := range []reflect.Type{reflect.TypeFor[Welcome](), reflect.TypeFor[Events](), reflect.TypeFor[Result](),
		reflect.TypeFor[Ping](), reflect.TypeFor[Transfer](), reflect.TypeFor[ErrorBody]()} {
		for key, typ := range jsonFields(msg) {
			if msg == reflect.TypeFor[Transfer]() && key == "node" {
				continue // the Go client does not read it
			}
			if msg == reflect.TypeFor[Welcome]() && (key == "world" || key == "player" || key == "epoch") {
				continue // the Go client does not read them
			}
			u, ok := union[key]
			require.True(t, ok, "%s.%s", msg.Name(), key)
			require.Equal(t, typ, u, "%s.%s", msg.Name(), key)
		}
	}
}

func TestServerMsgDecodesAWelcome(t *testing.T) {
	w := Welcome{Type: TypeWelcome, Session: "s1", ResumeToken: "tok", World: "arena", Player: "ann", Seq: 7, Epoch: 1,
		Data: map[string]Value{"gold": Int(5)}, UDP: &UDPInfo{Addr: ":9", KeyID: "aw==", Key: "aw=="}, Nodes: []string{"http://n2"}}
	b, err := json.Marshal(w)
	require.NoError(t, err)
	var m ServerMsg
	require.NoError(t, json.Unmarshal(b, &m))
	require.Equal(t, ServerMsg{Type: TypeWelcome, Session: "s1", ResumeToken: "tok", Seq: 7, Data: w.Data, UDP: w.UDP, Nodes: w.Nodes}, m)
}

// A leave message decodes as a ServerMsg (a client from before leave
// messages reads every message that way): its ids do not meet the
// "entities" object of other messages, in JSON and in msgpack.
func TestLeaveDecodesAsAServerMsg(t *testing.T) {
	l := Leave{Type: TypeLeave, World: "w", Seq: 7, IDs: []string{"a", "b"}}
	b, err := json.Marshal(l)
	require.NoError(t, err)
	var m ServerMsg
	require.NoError(t, json.Unmarshal(b, &m))
	require.Equal(t, ServerMsg{Type: TypeLeave, Seq: 7}, m)
	mb, err := MarshalMsgpack(l)
	require.NoError(t, err)
	m = ServerMsg{}
	require.NoError(t, UnmarshalMsgpack(mb, &m))
	require.Equal(t, ServerMsg{Type: TypeLeave, Seq: 7}, m)
	var back Leave
	require.NoError(t, UnmarshalMsgpack(mb, &back))
	require.Equal(t, l, back)
}
