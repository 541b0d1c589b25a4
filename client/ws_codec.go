package client

import (
	"encoding/json"
	"fmt"

	"github.com/coder/websocket"
	"github.com/gsd-dev/gsd/wire"
)

// MsgpackSubprotocol is the binary play protocol: the messages of
// PlaySubprotocol as MessagePack maps with the same keys
// (docs/PROTOCOL.md, "Binary subprotocol").
const MsgpackSubprotocol = wire.SubprotocolMsgpack

// The encodings of PlayOptions.Encoding.
const (
	EncodingJSON    = "json"
	EncodingMsgpack = "msgpack"
)

// playCodec encodes a Play's messages by its encoding.
type playCodec struct{ msgpack bool }

func codecFor(encoding string) (playCodec, error) {
	switch encoding {
	case "", EncodingJSON:
		return playCodec{}, nil
	case EncodingMsgpack:
		return playCodec{msgpack: true}, nil
	}
	return playCodec{}, fmt.Errorf("gsd/client: unknown play encoding %q (want %q or %q)", encoding, EncodingJSON, EncodingMsgpack)
}

func (k playCodec) subprotocol() string {
	if k.msgpack {
		return MsgpackSubprotocol
	}
	return PlaySubprotocol
}

func (k playCodec) messageType() websocket.MessageType {
	if k.msgpack {
		return websocket.MessageBinary
	}
	return websocket.MessageText
}

func (k playCodec) marshal(v any) ([]byte, error) {
	if k.msgpack {
		return wire.MarshalMsgpack(v)
	}
	return json.Marshal(v)
}

// unmarshal decodes one server message of WebSocket type typ.
func (k playCodec) unmarshal(typ websocket.MessageType, b []byte, v any) error {
	if typ != k.messageType() {
		return fmt.Errorf("a %s message on %s", typ, k.subprotocol())
	}
	if k.msgpack {
		return wire.UnmarshalMsgpack(b, v)
	}
	return json.Unmarshal(b, v)
}

// opWire is an op's wire form (as wire.Op's MarshalJSON writes it), for
// msgpack, where the value keeps its type.
type opWire struct {
	Op     string      `json:"op"`
	Entity string      `json:"entity"`
	Field  string      `json:"field,omitempty"`
	Value  *wire.Value `json:"value,omitempty"`
	By     int64       `json:"by,omitempty"`
	Expect string      `json:"expect,omitempty"`
}

type actionWire struct {
	Player    string   `json:"player"`
	Seq       uint64   `json:"seq"`
	InputTime int64    `json:"input_time,omitempty"`
	Priority  string   `json:"priority,omitempty"`
	Ops       []opWire `json:"ops"`
}

// actionMsg encodes {"type":"action","action":a}.
func (k playCodec) actionMsg(a ActionRequest) ([]byte, error) {
	if !k.msgpack {
		raw, err := json.Marshal(a)
		if err != nil {
			return nil, err
		}
		return json.Marshal(struct {
			Type   string          `json:"type"`
			Action json.RawMessage `json:"action"`
		}{"action", raw})
	}
	w := actionWire{Player: a.Player, Seq: a.Seq, InputTime: a.InputTime, Priority: a.Priority, Ops: make([]opWire, len(a.Ops))}
	for i, o := range a.Ops {
		w.Ops[i] = opWire{Op: o.Kind.String(), Entity: o.Entity, Field: o.Field, By: o.By, Expect: o.Expect.String()}
		if o.Value.Kind != wire.KindNull {
			v := o.Value
			w.Ops[i].Value = &v
		}
	}
	return wire.MarshalMsgpack(struct {
		Type   string     `json:"type"`
		Action actionWire `json:"action"`
	}{"action", w})
}
