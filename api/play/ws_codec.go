package play

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/coder/websocket"
	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
)

// MsgpackSubprotocol is the WebSocket subprotocol of the binary play
// protocol: the messages of PlaySubprotocol as MessagePack maps with the
// same keys, in binary messages (docs/PROTOCOL.md, "Binary subprotocol").
const MsgpackSubprotocol = wire.SubprotocolMsgpack

// playCodec is how a play connection's messages are encoded: by the
// negotiated subprotocol.
type playCodec uint8

const (
	codecJSON playCodec = iota
	codecMsgpack
)

// codecOf returns the codec of a negotiated subprotocol; false for none.
func codecOf(subprotocol string) (playCodec, bool) {
	switch subprotocol {
	case PlaySubprotocol:
		return codecJSON, true
	case MsgpackSubprotocol:
		return codecMsgpack, true
	}
	return codecJSON, false
}

func (k playCodec) String() string {
	if k == codecMsgpack {
		return MsgpackSubprotocol
	}
	return PlaySubprotocol
}

// messageType is the WebSocket message type the codec's messages travel in.
func (k playCodec) messageType() websocket.MessageType {
	if k == codecMsgpack {
		return websocket.MessageBinary
	}
	return websocket.MessageText
}

// marshal encodes one server message.
func (k playCodec) marshal(v any) ([]byte, error) {
	if k == codecMsgpack {
		return wire.MarshalMsgpack(v)
	}
	return json.Marshal(v)
}

// decode decodes one client message of WebSocket type typ, as strictly in
// either codec: a msgpack message is transcoded to JSON and decoded by the
// same strict decoder (unknown keys, wrong types, trailing bytes refused).
func (k playCodec) decode(typ websocket.MessageType, data []byte, msg *wire.ClientMsg) error {
	if typ != k.messageType() {
		return fmt.Errorf("%w: %s messages are not part of %s", fsm.ErrMalformed, typ, k)
	}
	if k == codecMsgpack {
		j, err := wire.MsgpackToJSON(data)
		if err != nil {
			return err
		}
		data = j
	}
	return edge.DecodeStrict(data, msg)
}

// playSubprotocols returns the subprotocols to accept: the first one the
// client offers that the server knows, so a client chooses by its order;
// both when it offers neither (the connection is then refused with 4400).
func playSubprotocols(r *http.Request) []string {
	for _, h := range r.Header.Values("Sec-WebSocket-Protocol") {
		for p := range strings.SplitSeq(h, ",") {
			p = strings.TrimSpace(p)
			if _, ok := codecOf(p); ok {
				return []string{p}
			}
		}
	}
	return []string{PlaySubprotocol, MsgpackSubprotocol}
}
