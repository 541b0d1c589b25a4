package client

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"math"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

func TestUDPLaneTakesTheWebSocketsHostForAnUnspecifiedOne(t *testing.T) {
	require.Nil(t, udpLane(nil, "http://h:1"))
	for addr, want := range map[string]string{
		"0.0.0.0:7000":   "node.example:7000",
		"[::]:7000":      "node.example:7000",
		":7000":          "node.example:7000",
		"10.0.0.1:7000":  "10.0.0.1:7000",
		"udp.example:9":  "udp.example:9",
		"no port at all": "no port at all",
	} {
		got := udpLane(&UDPInfo{Addr: addr, KeyID: "k", Key: "s"}, "http://node.example:8080")
		require.Equal(t, want, got.Addr, addr)
		require.Equal(t, "k", got.KeyID)
	}
}

// udpServer is a UDP socket that hands the datagrams it receives to a channel.
func udpServer(t *testing.T) (net.PacketConn, chan []byte) {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	got := make(chan []byte, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			n, _, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			got <- append([]byte(nil), buf[:n]...)
		}
	}()
	t.Cleanup(func() { pc.Close(); <-done })
	return pc, got
}

func TestUDPInputSendsTaggedPacketsInTheDocumentedLayout(t *testing.T) {
	pc, got := udpServer(t)
	key := make([]byte, wire.UDPKeyLen)
	key[0] = 7
	info := UDPInfo{Addr: pc.LocalAddr().String(), KeyID: base64.StdEncoding.EncodeToString([]byte("KEYID-01")), Key: base64.StdEncoding.EncodeToString(key)}
	var n uint64 = 40
	u, err := NewUDPInput(info, UDPOptions{NextSeq: func() uint64 { n++; return n }})
	require.NoError(t, err)
	before := time.Now().UnixNano()
	seq, err := u.Send(Input{"e", "i", wire.Int(-2)}, Input{"e", "f", wire.Float(2.5)}, Input{"e", "s", wire.String("hi")}, Input{"e", "b", wire.Bool(true)})
	require.NoError(t, err)
	require.Equal(t, uint64(41), seq)
	var b []byte
	select {
	case b = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("no datagram")
	}
	body, tag := b[:len(b)-wire.UDPTagLen], b[len(b)-wire.UDPTagLen:]
	m := hmac.New(sha256.New, key)
	m.Write(body)
	require.Equal(t, m.Sum(nil)[:wire.UDPTagLen], tag)
	require.Equal(t, byte(1), body[0])
	require.Equal(t, "KEYID-01", string(body[1:9]))
	require.Equal(t, uint64(41), binary.BigEndian.Uint64(body[9:17]))
	require.GreaterOrEqual(t, int64(binary.BigEndian.Uint64(body[17:25])), before)
	require.Equal(t, byte(4), body[25])
	want := []byte{1, 'e', 1, 'i', 1}
	want = binary.BigEndian.AppendUint64(want, uint64(0xfffffffffffffffe))
	want = append(want, 1, 'e', 1, 'f', 2)
	want = binary.BigEndian.AppendUint64(want, math.Float64bits(2.5))
	want = append(want, 1, 'e', 1, 's', 3, 0, 2, 'h', 'i')
	want = append(want, 1, 'e', 1, 'b', 4, 1)
	require.Equal(t, want, body[26:])

	// The default counter starts at 1.
	u2, err := NewUDPInput(info, UDPOptions{})
	require.NoError(t, err)
	seq, err = u2.SendInput("e", "x", wire.Int(1))
	require.NoError(t, err)
	require.Equal(t, uint64(1), seq)
	require.NoError(t, u2.Close())
	require.NoError(t, u2.Close())
	_, err = u2.SendInput("e", "x", wire.Int(1))
	require.ErrorIs(t, err, net.ErrClosed)
	require.NoError(t, u.Close())
}

func TestUDPInputRefusesBadKeysAndInputs(t *testing.T) {
	good := UDPInfo{Addr: "127.0.0.1:9", KeyID: base64.StdEncoding.EncodeToString(make([]byte, 8)), Key: base64.StdEncoding.EncodeToString(make([]byte, 32))}
	bad := good
	bad.KeyID = "short"
	_, err := NewUDPInput(bad, UDPOptions{})
	require.ErrorIs(t, err, ErrUDPInput)
	bad = good
	bad.Key = base64.StdEncoding.EncodeToString(make([]byte, 31))
	_, err = NewUDPInput(bad, UDPOptions{})
	require.ErrorIs(t, err, ErrUDPInput)
	bad = good
	bad.Addr = "nowhere"
	_, err = NewUDPInput(bad, UDPOptions{})
	require.ErrorContains(t, err, "udp lane")

	u, err := NewUDPInput(good, UDPOptions{})
	require.NoError(t, err)
	defer u.Close()
	many := make([]Input, UDPMaxInputs+1)
	for i := range many {
		many[i] = Input{"e", "f", wire.Int(1)}
	}
	long := strings.Repeat("s", wire.MaxStringLen)
	for name, in := range map[string][]Input{
		"none":         nil,
		"too many":     many,
		"empty entity": {{"", "f", wire.Int(1)}},
		"long field":   {{"e", strings.Repeat("f", wire.MaxNameLen+1), wire.Int(1)}},
		"NaN":          {{"e", "f", wire.Float(math.NaN())}},
		"null":         {{"e", "f", wire.Value{}}},
		"long string":  {{"e", "f", wire.String(long + "s")}},
		"over 1200":    {{"e", "f", wire.String(long)}},
	} {
		_, err := u.Send(in...)
		require.ErrorIs(t, err, ErrUDPInput, name)
	}
	_, err = encodeUDP(make([]byte, 8), make([]byte, 32), 0, 0, []Input{{"e", "f", wire.Int(1)}})
	require.ErrorIs(t, err, ErrUDPInput)

	tooMany := make(map[string]wire.Value, UDPMaxParams+1)
	for i := range UDPMaxParams + 1 {
		tooMany[string(rune('a'+i))] = wire.Int(1)
	}
	for name, c := range map[string]struct {
		action string
		params map[string]wire.Value
	}{
		"no name":     {"", nil},
		"long name":   {strings.Repeat("a", wire.MaxNameLen+1), nil},
		"too many":    {"move", tooMany},
		"unnamed":     {"move", map[string]wire.Value{"": wire.Int(1)}},
		"null param":  {"move", map[string]wire.Value{"x": {}}},
		"NaN param":   {"move", map[string]wire.Value{"x": wire.Float(math.NaN())}},
		"long string": {"move", map[string]wire.Value{"x": wire.String(long + "s")}},
	} {
		_, err := u.SendAction(c.action, c.params)
		require.ErrorIs(t, err, ErrUDPInput, name)
	}
}

func TestUDPInputSendsDeclaredActionsInTheDocumentedLayout(t *testing.T) {
	pc, got := udpServer(t)
	key := make([]byte, wire.UDPKeyLen)
	info := UDPInfo{Addr: pc.LocalAddr().String(), KeyID: base64.StdEncoding.EncodeToString([]byte("KEYID-02")), Key: base64.StdEncoding.EncodeToString(key)}
	u, err := NewUDPInput(info, UDPOptions{})
	require.NoError(t, err)
	defer u.Close()
	seq, err := u.SendAction("move", map[string]wire.Value{"y": wire.Int(-2), "x": wire.Int(5)})
	require.NoError(t, err)
	require.Equal(t, uint64(1), seq)
	var b []byte
	select {
	case b = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("no datagram")
	}
	body := b[:len(b)-wire.UDPTagLen]
	require.True(t, wire.UDPVerify(key, b))
	require.Equal(t, byte(wire.UDPVersionAction), body[0])
	require.Equal(t, "KEYID-02", string(body[1:9]))
	want := []byte{4, 'm', 'o', 'v', 'e', 2, 1, 'x', 1}
	want = binary.BigEndian.AppendUint64(want, 5)
	want = append(want, 1, 'y', 1)
	want = binary.BigEndian.AppendUint64(want, uint64(0xfffffffffffffffe))
	require.Equal(t, want, body[25:], "params sorted by name")
}
