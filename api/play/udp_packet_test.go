package play

import (
	"encoding/hex"
	"strings"
	"testing"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

func TestReplayWindowAcceptsEachSeqOnceWithinTheWindow(t *testing.T) {
	var w replayWindow
	steps := []struct {
		seq  uint64
		want int
	}{
		{5, windowOK},
		{5, windowReplayed},
		{3, windowOK}, // reordered, inside the window
		{3, windowReplayed},
		{4, windowOK},
		{1029, windowOK}, // top moves by 1,024: 5 falls out
		{5, windowTooOld},
		{6, windowOK}, // 1029-6 = 1023 < 1024: still inside
		{1030, windowOK},
		{6, windowTooOld},
		{1029, windowReplayed},
		{5000, windowOK}, // a jump beyond the window clears it
		{4000, windowOK},
		{4000, windowReplayed},
		{3976, windowTooOld},
		{4999, windowOK},
		{5001, windowOK},
		{4999, windowReplayed},
	}
	for i, s := range steps {
		require.Equal(t, s.want, w.check(s.seq), "step %d: seq %d", i, s.seq)
	}
}

func TestReplayWindowForgetsSeqsItSlidPast(t *testing.T) {
	var w replayWindow
	require.Equal(t, windowOK, w.check(1))
	require.Equal(t, windowOK, w.check(1+udpWindowBits)) // the same bit as seq 1
	require.Equal(t, windowOK, w.check(2+udpWindowBits/2))
	require.Equal(t, windowOK, w.check(3+udpWindowBits+udpWindowBits/2)) // slides over 2+512's slot, clearing it
	require.Equal(t, windowOK, w.check(3+udpWindowBits), "a slot reused by a newer seq starts clear")
}

func TestDecodeUDPReadsEveryValueType(t *testing.T) {
	key := make([]byte, wire.UDPKeyLen)
	long := strings.Repeat("s", fsm.MaxStringLen)
	b := udpBytes([]byte("abcdefgh"), key, 42, -7,
		input{"e", "i", fsm.Int(-3)}, input{"e", "f", fsm.Float(1.5)},
		input{"e", "s", fsm.String(long)}, input{"e", "t", fsm.Bool(true)}, input{"e", "u", fsm.Bool(false)})
	require.True(t, wire.UDPVerify(key, b))
	p, err := decodeUDP(b)
	require.NoError(t, err)
	require.Equal(t, [wire.UDPKeyIDLen]byte{'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'}, p.KeyID)
	require.Equal(t, uint64(42), p.Seq)
	require.Equal(t, int64(-7), p.InputTime)
	require.Equal(t, []fsm.Op{
		{Kind: fsm.OpSet, Entity: "e", Field: "i", Value: fsm.Int(-3)},
		{Kind: fsm.OpSet, Entity: "e", Field: "f", Value: fsm.Float(1.5)},
		{Kind: fsm.OpSet, Entity: "e", Field: "s", Value: fsm.String(long)},
		{Kind: fsm.OpSet, Entity: "e", Field: "t", Value: fsm.Bool(true)},
		{Kind: fsm.OpSet, Entity: "e", Field: "u", Value: fsm.Bool(false)},
	}, p.Ops)

	ops := make([]input, wire.UDPMaxOps+1)
	for i := range ops {
		ops[i] = input{"e", "f", fsm.Int(1)}
	}
	_, err = decodeUDP(udpBytes([]byte("abcdefgh"), key, 1, 0, ops...))
	require.ErrorIs(t, err, wire.ErrUDPMalformed)
	_, err = decodeUDP(udpBytes([]byte("abcdefgh"), key, 1, 0, input{"e", "f", fsm.String(long + "s")}))
	require.ErrorIs(t, err, wire.ErrUDPMalformed)
	_, err = decodeUDP([]byte{wire.UDPVersion})
	require.ErrorIs(t, err, wire.ErrUDPMalformed)
}

// FuzzDecodeUDP feeds the lane's decoder arbitrary bytes: it must never
// panic, and whatever it accepts must be a valid action's ops.
func FuzzDecodeUDP(f *testing.F) {
	key := make([]byte, wire.UDPKeyLen)
	id := []byte("abcdefgh")
	f.Add(udpBytes(id, key, 1, 0, input{"ann", "x", fsm.Int(5)}))
	f.Add(udpBytes(id, key, 9, 9, input{"ann", "x", fsm.Float(0.5)}, input{"ann", "n", fsm.String("hi")}, input{"a", "b", fsm.Bool(true)}))
	f.Add(udpBytes(id, key, 1, 0))
	f.Add([]byte{wire.UDPVersion})
	f.Add(make([]byte, wire.UDPMinPacket))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := decodeUDP(b)
		if err != nil {
			require.ErrorIs(t, err, wire.ErrUDPMalformed)
			return
		}
		require.NotZero(t, p.Seq)
		a := fsm.Action{World: "w", Player: "p", Seq: p.Seq, Ops: p.Ops}
		require.NoError(t, a.Validate())
		var w replayWindow
		require.Equal(t, windowOK, w.check(p.Seq))
		require.Equal(t, windowReplayed, w.check(p.Seq))
	})
}

func TestDecodeUDPReadsTheExampleOfTheProtocolDoc(t *testing.T) {
	body, err := hex.DecodeString(strings.NewReplacer(" ", "", "\n", "").Replace(`
01 0102030405060708 0000000000000007 0000000000000000 01
03 616e6e 01 78 01 0000000000000005`))
	require.NoError(t, err)
	key := []byte("0123456789abcdef0123456789abcdef")
	b := append(body, wire.UDPTag(key, body)...)
	require.Equal(t, udpBytes([]byte{1, 2, 3, 4, 5, 6, 7, 8}, key, 7, 0, input{"ann", "x", fsm.Int(5)}), b)
	p, err := decodeUDP(b)
	require.NoError(t, err)
	require.Equal(t, uint64(7), p.Seq)
	require.Equal(t, []fsm.Op{{Kind: fsm.OpSet, Entity: "ann", Field: "x", Value: fsm.Int(5)}}, p.Ops)
}
