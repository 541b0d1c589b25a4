package play

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/gsd-dev/gsd/internal/golden"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// The UDP input packet: a fixed packet with every value type, built by the
// documented layout (udpBytes) and checked against what the server
// decodes. client/udp_golden_test.go asserts that the Go client encodes
// the same packet to the same bytes (testdata/golden/udp_packet.bin).

// goldenUDPKey and goldenUDPKeyID are the packet's fixed key and key id.
func goldenUDPKey() []byte {
	k := make([]byte, wire.UDPKeyLen)
	for i := range k {
		k[i] = byte(i)
	}
	return k
}

var goldenUDPKeyID = []byte{0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7}

// goldenUDPDecode verifies and decodes a packet as the server's lane does.
func goldenUDPDecode(key, b []byte) (*wire.UDPPacket, error) {
	if !wire.UDPVerify(key, b) {
		return nil, fmt.Errorf("bad tag")
	}
	return decodeUDP(b)
}

func TestGoldenUDPPacket(t *testing.T) {
	b := udpBytes(goldenUDPKeyID, goldenUDPKey(), 1_000_000_007, 1_700_000_000_123_456_789,
		input{"ann", "x", fsm.Float(-12.375)}, input{"ann", "hp", fsm.Int(-3)},
		input{"ann", "name", fsm.String("Ærwyn")}, input{"ann", "up", fsm.Bool(true)},
		input{"ann", "down", fsm.Bool(false)}, input{"cart", "n", fsm.Int(1 << 40)})
	golden.Binary(t, "udp_packet.bin", b)

	p, err := goldenUDPDecode(goldenUDPKey(), golden.Read(t, "udp_packet.bin"))
	require.NoError(t, err)
	var sb strings.Builder
	fmt.Fprintf(&sb, "key_id=%x seq=%d input_time=%d\n", p.KeyID, p.Seq, p.InputTime)
	for _, o := range p.Ops {
		j, err := json.Marshal(o)
		require.NoError(t, err)
		fmt.Fprintf(&sb, "%s\n", j)
	}
	golden.Text(t, "udp_packet_decoded.txt", []byte(sb.String()))
}

// The version 2 packet: a declared action with a param of every value
// type, built by the documented layout (udpActionBytes). The client's
// golden test encodes the same call to the same bytes
// (testdata/golden/udp_action_packet.bin).
func TestGoldenUDPActionPacket(t *testing.T) {
	b := udpActionBytes(goldenUDPKeyID, goldenUDPKey(), 1_000_000_008, 1_700_000_000_123_456_789, "attack",
		input{"", "power", fsm.Float(0.75)}, input{"", "quiet", fsm.Bool(true)},
		input{"", "target", fsm.String("orc7")}, input{"", "x", fsm.Int(-12)})
	golden.Binary(t, "udp_action_packet.bin", b)

	p, err := goldenUDPDecode(goldenUDPKey(), golden.Read(t, "udp_action_packet.bin"))
	require.NoError(t, err)
	var sb strings.Builder
	fmt.Fprintf(&sb, "key_id=%x seq=%d input_time=%d action=%s\n", p.KeyID, p.Seq, p.InputTime, p.Action)
	for _, pa := range udpParams(p) {
		j, err := json.Marshal(pa.Value)
		require.NoError(t, err)
		fmt.Fprintf(&sb, "%s=%s\n", pa.Name, j)
	}
	golden.Text(t, "udp_action_packet_decoded.txt", []byte(sb.String()))
}
