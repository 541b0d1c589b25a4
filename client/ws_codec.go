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
		}{wire.TypeAction, raw})
	}
	return wire.MarshalMsgpack(struct {
		Type   string             `json:"type"`
		Action wire.ActionRequest `json:"action"`
	}{wire.TypeAction, a})
}
