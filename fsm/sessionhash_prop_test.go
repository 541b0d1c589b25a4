package fsm

import (
	"bytes"
	"crypto/sha256"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// drawSessionCommand draws a session command on world w over a few ids and
// players, so opens, resumes, kicks, bans and data changes meet each other.
func drawSessionCommand(t *rapid.T) Command {
	kind := rapid.SampledFrom([]CmdKind{CmdSessionOpen, CmdSessionAck, CmdSessionResume, CmdSessionClose,
		CmdSessionData, CmdSessionKick, CmdSessionBan, CmdSessionUnban, CmdSessionImport, CmdSessionAcks}).Draw(t, "session kind")
	if kind == CmdSessionAcks {
		// Batched acks over the same worlds and ids, some of them closed
		// or never opened, some seqs beyond the world's.
		var acks []SessionAck
		for range rapid.IntRange(1, 4).Draw(t, "acks") {
			acks = append(acks, SessionAck{
				World: rapid.SampledFrom([]string{"w", "strict", "none"}).Draw(t, "ack world"),
				ID:    rapid.SampledFrom([]string{"s1", "s2", "s3"}).Draw(t, "ack id"),
				Seq:   rapid.Uint64Range(0, 6).Draw(t, "ack seq"),
			})
		}
		return Command{Kind: kind, Acks: acks}
	}
	player := rapid.SampledFrom([]string{"ann", "bob", "cat"}).Draw(t, "session player")
	c := &SessionCmd{
		World:     rapid.SampledFrom([]string{"w", "w", "strict"}).Draw(t, "session world"),
		ID:        rapid.SampledFrom([]string{"s1", "s2", "s3"}).Draw(t, "session id"),
		Player:    player,
		TokenHash: sha256.Sum256([]byte(player)),
		Seq:       rapid.Uint64Range(0, 6).Draw(t, "session seq"),
		Reason:    rapid.SampledFrom([]string{"", "afk", "aimbot"}).Draw(t, "reason"),
		Node:      rapid.SampledFrom([]string{"", "n1", "n2"}).Draw(t, "session node"),
	}
	for range rapid.IntRange(0, 2).Draw(t, "data items") {
		c.Data = append(c.Data, DataItem{
			Key:   rapid.SampledFrom([]string{"gold", "xp"}).Draw(t, "data key"),
			Value: rapid.SampledFrom([]Value{{}, Int(1), Float(math.Copysign(0, -1)), String("x")}).Draw(t, "data value"),
		})
	}
	return Command{Kind: kind, Session: c}
}

// TestRestoredReplicaHashesEqualTheApplyingReplicaAtEverySeq applies random
// actions and session commands (bans, data, kicks...) to a replica, restores
// a second one from a snapshot taken at a random point and feeds it the
// rest: after every entry, every seq both can answer has the same hash, and
// each world's sessions hash equals its recomputation.
func TestRestoredReplicaHashesEqualTheApplyingReplicaAtEverySeq(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var batches [][]byte
		batches = append(batches, EncodeBatch(&Batch{Time: 1, Commands: propWorlds()}))
		for i := range rapid.IntRange(1, 15).Draw(t, "batches") {
			var cmds []Command
			for range rapid.IntRange(0, 6).Draw(t, "commands") {
				if rapid.Bool().Draw(t, "session?") {
					cmds = append(cmds, drawSessionCommand(t))
				} else {
					cmds = append(cmds, drawCommand(t))
				}
			}
			batches = append(batches, EncodeBatch(&Batch{Time: int64(i + 2), Commands: cmds}))
		}
		cut := rapid.IntRange(1, len(batches)).Draw(t, "snapshot after")

		a, err := New(DefaultConfig())
		require.NoError(t, err)
		var c *FSM
		for i, p := range batches {
			if i == cut {
				c = restored(rapidT{t}, snapshotBytes(rapidT{t}, a))
			}
			ra := a.Apply(uint64(i+1), p)
			if c != nil {
				require.Equal(t, ra, c.Apply(uint64(i+1), bytes.Clone(p)), "entry %d", i+1)
			}
			for _, f := range []*FSM{a, c} {
				if f == nil {
					continue
				}
				for _, w := range f.worlds {
					require.Equal(t, w.computeMeta(), w.meta, "world %s after entry %d", w.id, i+1)
				}
			}
			if c == nil {
				continue
			}
			for _, w := range a.Worlds() {
				for seq := uint64(0); seq <= w.Seq; seq++ {
					hc, err := c.Hash(w.ID, seq)
					if err != nil {
						continue // before the restore: not retained there
					}
					ha, err := a.Hash(w.ID, seq)
					require.NoError(t, err)
					require.Equal(t, ha, hc, "world %s seq %d after entry %d", w.ID, seq, i+1)
				}
			}
		}
		if c == nil {
			c = restored(rapidT{t}, snapshotBytes(rapidT{t}, a))
		}
		require.Equal(t, a.Worlds(), c.Worlds())
		require.Equal(t, snapshotBytes(rapidT{t}, a), snapshotBytes(rapidT{t}, c))
	})
}
