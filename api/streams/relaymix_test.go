package streams

import (
	"context"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/api/internal/apitest"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/store"
	"github.com/stretchr/testify/require"
)

// The relay's upstream ruler's events: what spectator-influx's players do
// (loadgen's battle mix: 55% bulk moves of the player's own x and y, 25%
// attacks that decrement a random player's hp and raise the attacker's
// best, 15% pickups or drops of one of 64 contested items with expect,
// 5% adds to the player's inventory), committed one by one by a real
// one-node store, so each event has the FSM's changes, versions,
// conflicts and rejections. Their Raft index and leader time depend on
// the machine, so the ruler rewrites them on copies from a seeded source
// (200 events/s: 5 ms apart with jitter; a few events per Raft entry), so
// that the bytes measured are the same on every run.

// relayMixWorld is the world the mix runs in.
const relayMixWorld = "bench"

// relayMix commits n actions of the mix on st and returns copies of their
// events, seeded by seed.
func relayMix(t testing.TB, st *store.Store, n int, seed uint64) []*fsm.Event {
	t.Helper()
	ctx := context.Background()
	rules := fsm.Rules{Fields: map[string]fsm.FieldRule{
		"x":         {Type: fsm.KindInt, Policy: fsm.PolicyAuthoritative},
		"y":         {Type: fsm.KindInt, Policy: fsm.PolicyAuthoritative},
		"hp":        {Type: fsm.KindInt, Policy: fsm.PolicyCounter},
		"kills":     {Type: fsm.KindInt, Policy: fsm.PolicyCounter},
		"owner":     {Type: fsm.KindString, Policy: fsm.PolicyAuthoritative},
		"inventory": {Type: fsm.KindString, Policy: fsm.PolicySet},
		"best":      {Type: fsm.KindInt, Policy: fsm.PolicyMax},
	}}
	require.NoError(t, st.CreateWorld(ctx, relayMixWorld, rules))
	const players, items = 1000, 64
	rng := rand.New(rand.NewPCG(seed, 13))
	seqs := make([]uint64, players)
	type hold struct {
		holder  int
		version uint64
	}
	held := map[int]hold{}
	out := make([]*fsm.Event, 0, n)
	next := 0
	for range n {
		i := next
		next = (next + 1) % players
		seqs[i]++
		id := "p" + strconv.Itoa(i)
		a := &fsm.Action{World: relayMixWorld, Player: id, Seq: seqs[i]}
		item := -1
		switch r := rng.IntN(100); {
		case r < 55:
			a.Priority = fsm.PriorityBulk
			a.Ops = []fsm.Op{
				{Kind: fsm.OpSet, Entity: id, Field: "x", Value: fsm.Value{Kind: fsm.KindInt, Int: rng.Int64N(1000)}},
				{Kind: fsm.OpSet, Entity: id, Field: "y", Value: fsm.Value{Kind: fsm.KindInt, Int: rng.Int64N(1000)}},
			}
		case r < 80:
			target := "p" + strconv.Itoa(rng.IntN(players))
			dmg := 1 + rng.Int64N(10)
			a.Ops = []fsm.Op{{Kind: fsm.OpIncr, Entity: target, Field: "hp", By: -dmg},
				{Kind: fsm.OpSet, Entity: id, Field: "best", Value: fsm.Value{Kind: fsm.KindInt, Int: dmg}}}
		case r < 95:
			item = rng.IntN(items)
			name := "item" + strconv.Itoa(item)
			if h, ok := held[item]; ok && h.holder == i {
				a.Ops = []fsm.Op{{Kind: fsm.OpDelete, Entity: name, Expect: fsm.Expect{Mode: fsm.ExpectVersion, Version: h.version}}}
			} else {
				a.Ops = []fsm.Op{{Kind: fsm.OpSet, Entity: name, Field: "owner", Value: fsm.Value{Kind: fsm.KindString, Str: id},
					Expect: fsm.Expect{Mode: fsm.ExpectVersion}}}
			}
		default:
			a.Ops = []fsm.Op{{Kind: fsm.OpAdd, Entity: id, Field: "inventory",
				Value: fsm.Value{Kind: fsm.KindString, Str: "gem" + strconv.Itoa(rng.IntN(20))}}}
		}
		ev, _, err := st.Act(ctx, a)
		require.NoError(t, err)
		if item >= 0 && ev.Status == fsm.StatusApplied {
			if len(ev.Changes) > 0 && ev.Changes[0].Field == "owner" {
				held[item] = hold{holder: i, version: ev.Changes[0].Version}
			} else {
				delete(held, item)
			}
		}
		out = append(out, ev)
	}
	// The machine's index and time, rewritten from a seeded source.
	idx, at := uint64(40_000), time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC).UnixNano()
	for k, ev := range out {
		c := *ev
		if rng.IntN(3) != 0 {
			idx += 1 + uint64(rng.IntN(2))
		}
		at += int64(2*time.Millisecond) + rng.Int64N(int64(6*time.Millisecond))
		c.Index, c.Time = idx, at
		out[k] = &c
	}
	return out
}

// relayMixStore starts the ruler's store.
func relayMixStore(t testing.TB) *store.Store { return apitest.StartStore(t) }
