package wire

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

// A -0 a client sends is stored as 0, by every decoder: an event's line
// writes -0 as "-0", which a reader (a relay checking the audit leaves)
// reads as the int 0, whose leaf differs from the node's.
func TestEveryDecoderReadsMinusZeroAsZero(t *testing.T) {
	var v Value
	require.NoError(t, json.Unmarshal([]byte(`-0.0`), &v))
	require.Equal(t, KindFloat, v.Kind)
	require.False(t, math.Signbit(v.Float), "json")

	b, err := MarshalMsgpack(map[string]any{"v": math.Copysign(0, -1)})
	require.NoError(t, err)
	var m struct {
		V Value `msgpack:"v"`
	}
	require.NoError(t, UnmarshalMsgpack(b, &m))
	require.Equal(t, KindFloat, m.V.Kind)
	require.False(t, math.Signbit(m.V.Float), "msgpack")

	key := make([]byte, UDPKeyLen)
	p, err := EncodeUDP(key, udpPacket(1, set("e", "f", Float(math.Copysign(0, -1)))))
	require.NoError(t, err)
	got, err := DecodeUDP(p)
	require.NoError(t, err)
	require.False(t, math.Signbit(got.Ops[0].Value.Float), "udp")
}

// A UDP string value that is not UTF-8 is refused, as msgpack refuses it
// (a leaf would hash its raw bytes, a JSON reader U+FFFD).
func TestDecodeUDPRefusesAStringThatIsNotUTF8(t *testing.T) {
	key := make([]byte, UDPKeyLen)
	p, err := EncodeUDP(key, udpPacket(1, set("e", "s", String("ok"))))
	require.NoError(t, err)
	body := p[:len(p)-UDPTagLen]
	body[len(body)-1] = 0xff // the string's last byte
	p = append(body, UDPTag(key, body)...)
	_, err = DecodeUDP(p)
	require.ErrorIs(t, err, ErrUDPMalformed)
}
