package relay

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/spectator"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// The chain hop's ruler (issue 13): the bytes relay A sends relay B per
// event, and A's CPU per event for that stream, through the relay's own
// writing path (eventsOut: the lines of a write in the stream's form,
// its compressor, one flush), fed one write per linger window (10
// events: 200 events/s × B's 50 ms upstream linger), in each form B may
// ask: whole (plain whole lines, what a relay's events route served
// before chains were lean), gzip, lean and lean+gzip (what B asks).
// The events are a synthetic version of spectator-influx's players' mix
// (api/streams' relaymix_test.go commits the real one through a store,
// whose test helpers are api's own): 55% bulk moves of the player's x
// and y, 25% attacks (a target's hp, and the attacker's best, a max
// field whose version moves only when it grows), 15% pickups and drops
// of 64 contested items (a tenth of them conflicts), 5% adds to the
// inventory (an element already there keeps its version), from a seeded
// source, so the bytes are the same on every run and machine.
//
//	go test -run '^$' -bench RelayChainHop -benchtime 20x ./spectator/relay/

// hopWindow is the events per write on the hop.
const hopWindow = 10

// chainMix returns n events of the mix as a relay holds them (each with
// its whole line), seeded by seed.
func chainMix(tb testing.TB, n int, seed uint64) []held {
	tb.Helper()
	const players, items = 1000, 64
	rng := rand.New(rand.NewPCG(seed, 13))
	type version struct {
		v   uint64
		max int64
	}
	fields := map[string]version{} // entity/field → its version (and best's value)
	owner := map[int]int{}         // item → holder
	clientSeqs := make([]uint64, players)
	idx, at := uint64(40_000), time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC).UnixNano()
	out := make([]held, 0, n)
	for k := range n {
		seq := uint64(k + 1)
		i := k % players
		clientSeqs[i]++
		id := "p" + strconv.Itoa(i)
		idx += 1 + uint64(rng.IntN(3))
		at += int64(4*time.Millisecond) + rng.Int64N(int64(2*time.Millisecond))
		ev := &fsm.Event{World: "bench", Seq: seq, Index: idx, Time: at, Player: id, ClientSeq: clientSeqs[i],
			Priority: fsm.PriorityCritical, Status: fsm.StatusApplied}
		set := func(entity, field string, op fsm.OpKind, v fsm.Value) {
			ev.Changes = append(ev.Changes, fsm.Change{Entity: entity, Field: field, Op: op, Value: v, Version: seq})
			fields[entity+"/"+field] = version{v: seq}
		}
		switch r := rng.IntN(100); {
		case r < 55:
			ev.Priority = fsm.PriorityBulk
			set(id, "x", fsm.OpSet, fsm.Int(rng.Int64N(1000)))
			set(id, "y", fsm.OpSet, fsm.Int(rng.Int64N(1000)))
		case r < 80:
			target := "p" + strconv.Itoa(rng.IntN(players))
			dmg := 1 + rng.Int64N(10)
			hp := fields[target+"/hp"].max - dmg
			set(target, "hp", fsm.OpIncr, fsm.Int(hp))
			fields[target+"/hp"] = version{v: seq, max: hp}
			best := fields[id+"/best"]
			if dmg > best.max {
				best = version{v: seq, max: dmg}
				fields[id+"/best"] = best
			}
			ev.Changes = append(ev.Changes, fsm.Change{Entity: id, Field: "best", Op: fsm.OpSet, Value: fsm.Int(best.max), Version: best.v})
		case r < 95:
			item := rng.IntN(items)
			name := "item" + strconv.Itoa(item)
			h, ok := owner[item]
			switch {
			case rng.IntN(10) == 0:
				ev.Status, ev.Reason = fsm.StatusConflict, "version"
				ev.Changes = []fsm.Change{{Entity: name, Field: "owner", Value: fsm.String("p" + strconv.Itoa(h)),
					Version: fields[name+"/owner"].v, Exists: ok}}
			case ok && h == i:
				delete(owner, item)
				ev.Changes = []fsm.Change{{Entity: name, Op: fsm.OpDelete, Version: fields[name+"/owner"].v}}
			default:
				owner[item] = i
				set(name, "owner", fsm.OpSet, fsm.String(id))
			}
		default:
			gem := fsm.String("gem" + strconv.Itoa(rng.IntN(20)))
			key := id + "/inventory/" + gem.Str
			v, had := fields[key]
			if !had {
				v = version{v: seq}
				fields[key] = v
			}
			ev.Changes = []fsm.Change{{Entity: id, Field: "inventory", Op: fsm.OpAdd, Value: gem, Version: v.v}}
		}
		line, err := json.Marshal(ev)
		require.NoError(tb, err)
		out = append(out, held{ev: ev, line: append(line, '\n')})
	}
	return out
}

// hopBytes writes hs on r's event stream path in form, hopWindow events
// per write, and returns the bytes sent.
func hopBytes(tb testing.TB, r *Relay, hs []held, form spectator.EventForm) []byte {
	tb.Helper()
	rec := httptest.NewRecorder()
	out := r.newEventsOut(rec, http.NewResponseController(rec), form)
	for i := 0; i < len(hs); i += hopWindow {
		require.NoError(tb, out.write(hs[i:min(i+hopWindow, len(hs))]))
	}
	out.end()
	return rec.Body.Bytes()
}

// cpuTime returns the process's CPU time so far (user and system).
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	require.NoError(tb, syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// hopRelay is a relay whose event stream path the ruler drives (it
// follows nothing).
func hopRelay(tb testing.TB) *Relay {
	tb.Helper()
	cfg := DefaultConfig()
	cfg.Upstream = "http://127.0.0.1:1"
	r, err := New(cfg)
	require.NoError(tb, err)
	tb.Cleanup(r.Close)
	return r
}

// hopForms are the forms B may ask A for.
var hopForms = []struct {
	name string
	form spectator.EventForm
}{
	{"whole", spectator.EventForm{}}, {"gzip", spectator.EventForm{Gzip: true}},
	{"lean", spectator.EventForm{Lean: true}}, {"lean+gzip", spectator.EventForm{Gzip: true, Lean: true}},
}

// The ruler measures what B reads: every line, whole after B rebuilds
// it, in order, in every form, and the same bytes on every run; the
// lean forms send fewer bytes than the whole ones.
func TestRelayChainHopRulerSendsEveryLine(t *testing.T) {
	hs := chainMix(t, 500, 1)
	require.Equal(t, hs, chainMix(t, 500, 1), "seeded: the same events")
	r := hopRelay(t)
	var want bytes.Buffer
	for _, h := range hs {
		want.Write(h.line)
	}
	size := map[string]int{}
	for _, f := range hopForms {
		sent := hopBytes(t, r, hs, f.form)
		require.Equal(t, sent, hopBytes(t, r, hs, f.form), f.name)
		size[f.name] = len(sent)
		var rd io.Reader = bytes.NewReader(sent)
		if f.form.Gzip {
			zr, err := gzip.NewReader(rd)
			require.NoError(t, err)
			rd = zr
		}
		plain, err := io.ReadAll(bufio.NewReader(rd))
		require.NoError(t, err, f.name)
		got := plain
		if f.form.Lean {
			var lean int
			got, lean = rebuildLean(t, "bench", plain)
			require.Equal(t, len(hs), lean, "every line lean")
		}
		require.Equal(t, want.String(), string(got), f.name)
	}
	require.Equal(t, want.Len(), size["whole"])
	require.Less(t, size["lean"], size["whole"])
	require.Less(t, size["lean+gzip"], size["gzip"])
}

// BenchmarkRelayChainHop reports, per form B asks A for, the bytes A
// sends B per event (B/event: deterministic) and A's CPU per event for
// that one stream (cpu-ns/event: the process's CPU time, so waiting for
// the cores does not count, for the lean cut, the compression and the
// writes into memory; still rough on a busy machine). The lean cut is
// also measured alone (cut-only), to see what caching lean lines per
// event would save each downstream stream.
func BenchmarkRelayChainHop(b *testing.B) {
	hs := chainMix(b, 3000, 1)
	r := hopRelay(b)
	for _, f := range hopForms {
		b.Run(f.name, func(b *testing.B) {
			var sent []byte
			start := cpuTime(b)
			for range b.N {
				sent = hopBytes(b, r, hs, f.form)
			}
			b.ReportMetric(float64(len(sent))/float64(len(hs)), "B/event")
			b.ReportMetric(float64((cpuTime(b)-start).Nanoseconds())/float64(b.N*len(hs)), "cpu-ns/event")
		})
	}
	b.Run("cut-only", func(b *testing.B) {
		var buf []byte
		start := cpuTime(b)
		for range b.N {
			for _, h := range hs {
				buf = wire.AppendLeanForm(buf[:0], h.line)
			}
		}
		b.ReportMetric(float64((cpuTime(b)-start).Nanoseconds())/float64(b.N*len(hs)), "cpu-ns/event")
	})
}
