package wire

import (
	"encoding/hex"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func udpPacket(seq uint64, ops ...Op) *UDPPacket {
	return &UDPPacket{KeyID: [UDPKeyIDLen]byte{1, 2, 3, 4, 5, 6, 7, 8}, Seq: seq, Ops: ops}
}

func set(entity, field string, v Value) Op {
	return Op{Kind: OpSet, Entity: entity, Field: field, Value: v}
}

func TestEncodeUDPMakesTheExampleOfTheProtocolDoc(t *testing.T) {
	body, err := hex.DecodeString(strings.NewReplacer(" ", "", "\n", "").Replace(`
01 0102030405060708 0000000000000007 0000000000000000 01
03 616e6e 01 78 01 0000000000000005`))
	require.NoError(t, err)
	key := []byte("0123456789abcdef0123456789abcdef")
	b, err := EncodeUDP(key, udpPacket(7, set("ann", "x", Int(5))))
	require.NoError(t, err)
	require.Equal(t, append(body, UDPTag(key, body)...), b)
	require.True(t, UDPVerify(key, b))
	require.Equal(t, [UDPKeyIDLen]byte{1, 2, 3, 4, 5, 6, 7, 8}, UDPKeyID(b))
	b[len(b)-1] ^= 1
	require.False(t, UDPVerify(key, b))
}

func TestUDPPacketsRoundTripEveryValueType(t *testing.T) {
	key := make([]byte, UDPKeyLen)
	p := udpPacket(42, set("e", "i", Int(-3)), set("e", "f", Float(1.5)), set("e", "s", String("héllo")),
		set("e", "t", Bool(true)), set("e", "u", Bool(false)))
	p.InputTime = -7
	b, err := EncodeUDP(key, p)
	require.NoError(t, err)
	got, err := DecodeUDP(b)
	require.NoError(t, err)
	require.Equal(t, p, got)
}

func TestEncodeUDPRefusesWhatCannotMakeAPacket(t *testing.T) {
	key := make([]byte, UDPKeyLen)
	many := make([]Op, UDPMaxOps+1)
	for i := range many {
		many[i] = set("e", "f", Int(1))
	}
	long := strings.Repeat("s", MaxStringLen)
	for name, p := range map[string]*UDPPacket{
		"none":         udpPacket(1),
		"too many":     udpPacket(1, many...),
		"seq 0":        udpPacket(0, set("e", "f", Int(1))),
		"empty entity": udpPacket(1, set("", "f", Int(1))),
		"long field":   udpPacket(1, set("e", strings.Repeat("f", MaxNameLen+1), Int(1))),
		"NaN":          udpPacket(1, set("e", "f", Float(math.NaN()))),
		"null":         udpPacket(1, set("e", "f", Value{})),
		"long string":  udpPacket(1, set("e", "f", String(long+"s"))),
		"over 1200":    udpPacket(1, set("e", "f", String(long))),
	} {
		_, err := EncodeUDP(key, p)
		require.ErrorIs(t, err, ErrUDPInput, name)
	}
}

func TestDecodeUDPRefusesMalformedPackets(t *testing.T) {
	key := make([]byte, UDPKeyLen)
	good, err := EncodeUDP(key, udpPacket(1, set("e", "f", Int(1)), set("e", "b", Bool(true))))
	require.NoError(t, err)
	edit := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	body := len(good) - UDPTagLen
	cut := func(p *UDPPacket, n int) []byte { // the body without its last n bytes, tagged
		b, err := EncodeUDP(key, p)
		require.NoError(t, err)
		b = b[:len(b)-UDPTagLen-n]
		return append(b, UDPTag(key, b)...)
	}
	for name, b := range map[string][]byte{
		"mid int":    cut(udpPacket(1, set("e", "f", Int(1))), 3),
		"mid length": cut(udpPacket(1, set("e", "f", String(""))), 1),
		"short":      good[:UDPMinPacket-1],
		"version":    edit(func(b []byte) []byte { b[0] = 3; return b }),
		"seq 0":      edit(func(b []byte) []byte { copy(b[9:17], make([]byte, 8)); return b }),
		"no ops":     edit(func(b []byte) []byte { b[25] = 0; return b }),
		"17 ops":     edit(func(b []byte) []byte { b[25] = UDPMaxOps + 1; return b }),
		"3 ops":      edit(func(b []byte) []byte { b[25] = 3; return b }),
		"bad type":   edit(func(b []byte) []byte { b[UDPHeaderLen+4] = 9; return b }),
		"bad bool":   edit(func(b []byte) []byte { b[body-1] = 2; return b }),
		"truncated":  append(append([]byte(nil), good[:body-1]...), good[body:]...),
		"trailing":   append(append(append([]byte(nil), good[:body]...), 0), good[body:]...),
	} {
		_, err := DecodeUDP(b)
		require.ErrorIs(t, err, ErrUDPMalformed, name)
	}
}

// FuzzDecodeUDP feeds the decoder arbitrary bytes: it never panics, and
// what it accepts re-encodes to the same body where the encoder's limits
// allow.
func FuzzDecodeUDP(f *testing.F) {
	key := make([]byte, UDPKeyLen)
	for _, p := range []*UDPPacket{udpPacket(1, set("ann", "x", Int(5))),
		udpPacket(9, set("ann", "x", Float(0.5)), set("ann", "n", String("hi")), set("a", "b", Bool(true))),
		actionPacket(3, "move", UDPParam{"x", Int(5)}, UDPParam{"y", Float(0.5)})} {
		b, err := EncodeUDP(key, p)
		require.NoError(f, err)
		f.Add(b)
	}
	f.Add([]byte{UDPVersion})
	f.Add(make([]byte, UDPMinPacket))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := DecodeUDP(b)
		if err != nil {
			require.ErrorIs(t, err, ErrUDPMalformed)
			return
		}
		again, err := EncodeUDP(key, p)
		if err != nil {
			require.ErrorIs(t, err, ErrUDPInput)
			return
		}
		require.Equal(t, b[:len(b)-UDPTagLen], again[:len(again)-UDPTagLen])
	})
}
