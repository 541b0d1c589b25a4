package client

import (
	"github.com/gsd-dev/gsd/internal/golden"
	"os"
	"path/filepath"
	"testing"

	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// The UDP input packet the Go client encodes for the same fixed packet as
// api/udp_golden_test.go: its bytes are golden here, and must equal the
// server's golden packet byte for byte.

// goldenUDPEncode encodes a packet as UDPInput.Send does.
func goldenUDPEncode(keyID, key []byte, seq uint64, inputTime int64, inputs []Input) ([]byte, error) {
	return encodeUDP(keyID, key, seq, inputTime, inputs)
}

// serverGoldenUDPPacket is the server side's golden packet.
var serverGoldenUDPPacket = filepath.Join("..", "api", "play", "testdata", "golden", "udp_packet.bin")

func TestGoldenUDPPacket(t *testing.T) {
	key := make([]byte, 32)
	for i := range key {
		key[i] = byte(i)
	}
	keyID := []byte{0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7}
	got, err := goldenUDPEncode(keyID, key, 1_000_000_007, 1_700_000_000_123_456_789, []Input{
		{Entity: "ann", Field: "x", Value: wire.Float(-12.375)}, {Entity: "ann", Field: "hp", Value: wire.Int(-3)},
		{Entity: "ann", Field: "name", Value: wire.String("Ærwyn")}, {Entity: "ann", Field: "up", Value: wire.Bool(true)},
		{Entity: "ann", Field: "down", Value: wire.Bool(false)}, {Entity: "cart", Field: "n", Value: wire.Int(1 << 40)},
	})
	require.NoError(t, err)
	golden.Binary(t, "udp_packet.bin", got)
	server, err := os.ReadFile(serverGoldenUDPPacket)
	require.NoError(t, err)
	require.Equal(t, server, got, "the client's packet must be the server's golden packet")
}

// serverGoldenUDPActionPacket is the server side's golden version 2 packet.
var serverGoldenUDPActionPacket = filepath.Join("..", "api", "play", "testdata", "golden", "udp_action_packet.bin")

func TestGoldenUDPActionPacket(t *testing.T) {
	key := make([]byte, 32)
	for i := range key {
		key[i] = byte(i)
	}
	keyID := []byte{0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7}
	got, err := encodeUDPAction(keyID, key, 1_000_000_008, 1_700_000_000_123_456_789, "attack", map[string]wire.Value{
		"target": wire.String("orc7"), "x": wire.Int(-12), "power": wire.Float(0.75), "quiet": wire.Bool(true),
	})
	require.NoError(t, err)
	golden.Binary(t, "udp_action_packet.bin", got)
	server, err := os.ReadFile(serverGoldenUDPActionPacket)
	require.NoError(t, err)
	require.Equal(t, server, got, "the client's packet must be the server's golden packet")
}
