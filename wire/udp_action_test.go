package wire

import (
	"encoding/hex"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func actionPacket(seq uint64, name string, params ...UDPParam) *UDPPacket {
	return &UDPPacket{KeyID: [UDPKeyIDLen]byte{1, 2, 3, 4, 5, 6, 7, 8}, Seq: seq, Action: name, Params: params}
}

func TestEncodeUDPActionMakesTheExampleOfTheProtocolDoc(t *testing.T) {
	body, err := hex.DecodeString(strings.NewReplacer(" ", "", "\n", "").Replace(`
02 0102030405060708 0000000000000007 0000000000000000
04 6d6f7665 02 01 78 01 0000000000000005 01 79 01 fffffffffffffffe`))
	require.NoError(t, err)
	key := []byte("0123456789abcdef0123456789abcdef")
	// Params in any order are written sorted by name.
	b, err := EncodeUDP(key, actionPacket(7, "move", UDPParam{"y", Int(-2)}, UDPParam{"x", Int(5)}))
	require.NoError(t, err)
	require.Equal(t, append(body, UDPTag(key, body)...), b)
}

func TestUDPActionPacketsRoundTripEveryValueTypeAndNoParams(t *testing.T) {
	key := make([]byte, UDPKeyLen)
	p := actionPacket(42, "act", UDPParam{"b", Bool(true)}, UDPParam{"c", Bool(false)}, UDPParam{"f", Float(1.5)},
		UDPParam{"i", Int(-3)}, UDPParam{"s", String("héllo")})
	p.InputTime = -7
	b, err := EncodeUDP(key, p)
	require.NoError(t, err)
	got, err := DecodeUDP(b)
	require.NoError(t, err)
	require.Equal(t, p, got)

	b, err = EncodeUDP(key, actionPacket(1, "ping"))
	require.NoError(t, err)
	require.Len(t, b, UDPHeaderLen+len("ping")+1+UDPTagLen) // the name's length byte sits where v1 counts ops
	got, err = DecodeUDP(b)
	require.NoError(t, err)
	require.Equal(t, actionPacket(1, "ping"), got)
}

func TestEncodeUDPRefusesActionsThatCannotMakeAPacket(t *testing.T) {
	key := make([]byte, UDPKeyLen)
	many := make([]UDPParam, UDPMaxParams+1)
	for i := range many {
		many[i] = UDPParam{string(rune('a' + i)), Int(1)}
	}
	both := actionPacket(1, "move")
	both.Ops = []Op{set("e", "f", Int(1))}
	paramsOnly := udpPacket(1, set("e", "f", Int(1)))
	paramsOnly.Params = []UDPParam{{"x", Int(1)}}
	for name, p := range map[string]*UDPPacket{
		"ops and action":  both,
		"params, no name": paramsOnly,
		"long name":       actionPacket(1, strings.Repeat("a", MaxNameLen+1)),
		"17 params":       actionPacket(1, "a", many...),
		"unnamed param":   actionPacket(1, "a", UDPParam{"", Int(1)}),
		"twice":           actionPacket(1, "a", UDPParam{"x", Int(1)}, UDPParam{"x", Int(2)}),
		"NaN":             actionPacket(1, "a", UDPParam{"x", Float(math.NaN())}),
		"null":            actionPacket(1, "a", UDPParam{"x", Value{}}),
		"long string":     actionPacket(1, "a", UDPParam{"x", String(strings.Repeat("s", MaxStringLen+1))}),
		"over 1200":       actionPacket(1, "a", UDPParam{"x", String(strings.Repeat("s", MaxStringLen))}),
		"seq 0":           actionPacket(0, "a"),
	} {
		_, err := EncodeUDP(key, p)
		require.ErrorIs(t, err, ErrUDPInput, name)
	}
}

func TestDecodeUDPRefusesMalformedActionPackets(t *testing.T) {
	key := make([]byte, UDPKeyLen)
	// tagged builds a version 2 packet from the bytes after the header.
	tagged := func(rest ...byte) []byte {
		b := []byte{UDPVersionAction, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0}
		b = append(b, rest...)
		for len(b) < UDPMinPacket-UDPTagLen {
			b = append(b, 0) // padding only a malformed packet needs
		}
		return append(b, UDPTag(key, b)...)
	}
	param := func(name string, v ...byte) []byte { return append(append([]byte{byte(len(name))}, name...), v...) }
	cat := func(parts ...[]byte) (b []byte) {
		for _, p := range parts {
			b = append(b, p...)
		}
		return b
	}
	one := []byte{1, 0, 0, 0, 0, 0, 0, 0, 1}
	for name, b := range map[string][]byte{
		"empty name":    tagged(cat([]byte{0, 0}, make([]byte, 8))...),
		"name too long": tagged(cat([]byte{200}, []byte("move"))...),
		"17 params":     tagged(cat([]byte{1, 'a', UDPMaxParams + 1}, param("x", one...))...),
		"short param":   tagged(cat([]byte{1, 'a', 2}, param("x", one...), []byte{1, 'y', 1, 0})...),
		"unnamed param": tagged(cat([]byte{1, 'a', 1}, param("", one...))...),
		"bad type":      tagged(cat([]byte{1, 'a', 1}, param("x", 9))...),
		"unsorted":      tagged(cat([]byte{1, 'a', 2}, param("y", one...), param("x", one...))...),
		"twice":         tagged(cat([]byte{1, 'a', 2}, param("x", one...), param("x", one...))...),
		"trailing":      tagged(cat([]byte{1, 'a', 1}, param("x", one...), []byte{0})...),
	} {
		_, err := DecodeUDP(b)
		require.ErrorIs(t, err, ErrUDPMalformed, name)
	}
}
