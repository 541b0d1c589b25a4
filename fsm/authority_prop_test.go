package fsm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// drawArenaLog draws a log of batches on the arena: declared actions by
// players (valid and cheating ones), raw writes by players and by the
// server, with leader times that may go backwards (a failover) and a
// rules update in the middle.
func drawArenaLog(t *rapid.T) []*Batch {
	players := []string{"ann", "bob", "mal"}
	targets := append(players, "sword", "ghost")
	fields := []string{"x", "y", "hp", "emote", "note", "owner", "moved_at"}
	seq := map[string]uint64{}
	var log []*Batch
	now := int64(1_000_000_000)
	for range rapid.IntRange(1, 30).Draw(t, "batches") {
		now += rapid.Int64Range(-2_000_000_000, 2_000_000_000).Draw(t, "tick")
		b := &Batch{Time: now}
		if rapid.IntRange(0, 9).Draw(t, "update") == 0 {
			// A rules update: the attack's cooldown doubles from the next
			// command on; each replica recompiles at the same point.
			var r Rules
			require.NoError(t, json.Unmarshal([]byte(strings.Replace(arenaJSON, "500000000", "1000000000", 1)), &r))
			b.Commands = append(b.Commands, Command{Kind: CmdUpdateRules, Rules: &RulesUpdate{World: "a", Rules: r}})
		}
		for range rapid.IntRange(1, 4).Draw(t, "commands") {
			p := rapid.SampledFrom(players).Draw(t, "player")
			seq[p]++
			a := &Action{World: "a", Player: p, Seq: seq[p], Role: rapid.SampledFrom([]string{RolePlayer, RolePlayer, "medic", "gm", RoleServer, ""}).Draw(t, "role")}
			switch rapid.IntRange(0, 4).Draw(t, "kind") {
			case 0:
				a.Name = "move"
				a.Params = []Param{{Name: "x", Value: Int(rapid.Int64Range(-3, 3).Draw(t, "x"))}, {Name: "y", Value: Int(rapid.Int64Range(-3, 3).Draw(t, "y"))}}
			case 1:
				a.Name, a.Params = "attack", []Param{{Name: "target", Value: String(rapid.SampledFrom(targets).Draw(t, "target"))}}
			case 2:
				a.Name, a.Params = "pickup", []Param{{Name: "item", Value: String(rapid.SampledFrom(targets).Draw(t, "item"))}}
			case 3:
				a.Name = "heal"
				a.Params = []Param{{Name: "amount", Value: Float(float64(rapid.IntRange(-5, 50).Draw(t, "amount")))}, {Name: "who", Value: String(rapid.SampledFrom(targets).Draw(t, "who"))}}
			default:
				f := rapid.SampledFrom(fields).Draw(t, "field")
				e := rapid.SampledFrom(targets).Draw(t, "entity")
				switch {
				case f == "hp":
					a.Ops = []Op{opIncr(e, f, rapid.Int64Range(-50, 50).Draw(t, "by"))}
				case f == "emote" || f == "note" || f == "owner":
					a.Ops = []Op{opSet(e, f, String(rapid.SampledFrom(players).Draw(t, "value")))}
				default:
					a.Ops = []Op{opSet(e, f, Int(rapid.Int64Range(-3, 3).Draw(t, "value")))}
				}
			}
			b.Commands = append(b.Commands, cmdAction(a))
		}
		log = append(log, b)
	}
	return log
}

// replayArena applies the setup and the log on a fresh FSM and returns it
// with the events' encodings.
func replayArena(t *rapid.T, log []*Batch) (*FSM, [][]byte) {
	h := arena(rapidT{t})
	var events [][]byte
	for i, b := range log {
		for _, r := range h.f.Apply(h.index+uint64(i)+1, EncodeBatch(b)) {
			require.NoError(t, r.Err)
			if r.Event != nil {
				events = append(events, EncodeEvent(r.Event))
			}
		}
	}
	return h.f, events
}

func TestReplayingADeclaredActionLogGivesTheSameResultsAndHash(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		log := drawArenaLog(t)
		f1, ev1 := replayArena(t, log)
		f2, ev2 := replayArena(t, log)
		require.Equal(t, ev1, ev2)
		h1, err := f1.Hash("a", 0)
		require.NoError(t, err)
		h2, err := f2.Hash("a", 0)
		require.NoError(t, err)
		require.Equal(t, h1, h2)
		require.True(t, bytes.Equal(snapshotBytes(rapidT{t}, f1), snapshotBytes(rapidT{t}, f2)))
		// A replica restored from a snapshot taken halfway applies the
		// rest as the others did (the world's clock is in the snapshot).
		half := len(log) / 2
		f3, _ := replayArena(t, log[:half])
		r := restored(rapidT{t}, snapshotBytes(rapidT{t}, f3))
		h := arena(rapidT{t})
		base := h.index
		for i, b := range log[half:] {
			r.Apply(base+uint64(half+i)+1, EncodeBatch(b))
		}
		h3, err := r.Hash("a", 0)
		require.NoError(t, err)
		require.Equal(t, h1.Hash, h3.Hash)
	})
}

func TestNoPlayerRequestChangesAFieldItsRulesDoNotLetItChange(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		h := arena(rapidT{t})
		for _, b := range drawArenaLog(t) {
			for _, c := range b.Commands {
				// One command per batch: its event shows what it changed.
				a := c.Action
				r := h.apply(c)[0]
				if a == nil || r.Event.Status != StatusApplied || a.Role != RolePlayer || a.Name != "" {
					continue
				}
				// A raw write by a player applied: only the emote of an
				// entity it owns (a player cannot write "owner").
				for _, ch := range r.Event.Changes {
					require.Equal(t, "emote", ch.Field, fmt.Sprintf("%+v", a))
					require.True(t, owns(h.f.worlds["a"], ch.Entity, a.Player), fmt.Sprintf("%+v", a))
				}
			}
		}
	})
}
