package spectator

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

func ev(seq uint64, t time.Time) *fsm.Event {
	return &fsm.Event{World: "w", Seq: seq, Time: t.UnixNano(), Status: fsm.StatusApplied,
		Changes: []fsm.Change{{Entity: "e", Field: "x", Op: fsm.OpSet, Value: fsm.Int(int64(seq)), Version: seq}}}
}

func TestDelayReleasesEventsOnlyOnceOldEnoughWithTheSkewBound(t *testing.T) {
	base := time.Unix(1_700_000_000, 0)
	b := NewDelay(10*time.Second, time.Second)
	_, ok := b.Next()
	require.False(t, ok)
	b.Push(ev(1, base), ev(2, base.Add(time.Second)), ev(3, base.Add(5*time.Second)))
	require.Equal(t, 3, b.Len())
	next, ok := b.Next()
	require.True(t, ok)
	require.Equal(t, base.Add(11*time.Second), next, "delay plus skew")
	require.Empty(t, b.Release(base.Add(11*time.Second-1)))
	require.Len(t, b.Release(base.Add(12*time.Second)), 2)
	require.Equal(t, base.Add(12*time.Second).Add(-11*time.Second).UnixNano(), b.Cutoff(base.Add(12*time.Second)))
	require.Len(t, b.Release(base.Add(time.Hour)), 1)
	require.Zero(t, b.Len())
}

func TestDelayHoldsLaterEventsBehindAnEarlierOneStampedInTheFuture(t *testing.T) {
	base := time.Unix(1_700_000_000, 0)
	b := NewDelay(time.Second, 0)
	b.Push(ev(1, base.Add(time.Minute)), ev(2, base)) // a new leader's clock ran behind
	require.Empty(t, b.Release(base.Add(2*time.Second)), "seq order: 2 waits for 1")
	require.Len(t, b.Release(base.Add(time.Minute+time.Second)), 2)
}

func TestNoDelayReleasesEverythingAtOnce(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	b := NewDelay(0, time.Hour) // no delay: the skew does not apply
	b.Push(ev(1, now.Add(time.Hour)))
	next, ok := b.Next()
	require.True(t, ok)
	require.True(t, next.IsZero(), "at once")
	require.Equal(t, now.UnixNano(), b.Cutoff(now))
	require.Len(t, b.Release(now), 1)
	b = NewDelay(-time.Second, -time.Second)
	b.Push(ev(1, now.Add(time.Hour)))
	require.Len(t, b.Release(now), 1, "a negative delay is none")
}

// FuzzDelayNeverLeaks drives a pipeline (without its goroutines) with
// events stamped at fuzzed leader times, in fuzzed steps of a fake clock,
// with viewers joining and keyframes made at fuzzed moments, and checks
// that no frame ever reflects an event newer than now - delay - skew: not
// a delta, not a join keyframe, not a keyframe made for a lagging viewer.
func FuzzDelayNeverLeaks(f *testing.F) {
	f.Add([]byte{0, 10, 1, 200, 2, 3, 1, 250, 0, 5, 3, 0, 1, 30})
	f.Add([]byte{0, 0, 0, 0, 0, 0, 1, 255, 1, 255, 1, 255, 2, 0, 3, 0})
	f.Add([]byte{0, 250, 0, 1, 2, 2, 1, 100, 1, 100, 1, 100, 3, 1, 1, 200})
	f.Fuzz(func(t *testing.T, data []byte) {
		const delay, skew = 30 * time.Second, 2 * time.Second
		base := time.Unix(1_700_000_000, 0)
		now := base
		fd := newFeed()
		cfg := DefaultConfig()
		cfg.World, cfg.Access, cfg.Subscribe = "w", access(t, map[string]string{"x": ""}, nil, fsm.TeamRule{}), fd.subscribe
		cfg.Delay, cfg.MaxClockSkew, cfg.Queue, cfg.KeyframeInterval = delay, skew, 3, 20*time.Second
		ag, err := NewAggregates(cfg.Access, fsm.Rules{Schema: fsm.Schema{Views: map[string]fsm.ViewRule{
			"best": {Kind: "max", Field: "x"},
		}}})
		require.NoError(t, err)
		cfg.Aggregates = ag
		cfg.Now = func() time.Time { return now }
		p, err := newPipeline(cfg)
		require.NoError(t, err)
		times := map[uint64]int64{} // seq → leader time
		var members []*Member
		check := func() {
			cut := now.Add(-delay - skew).UnixNano()
			for _, m := range members {
				// Only some viewers read: the others fall behind and
				// get keyframes made for them.
				for len(m.ch) > 0 && (m.key.view == View{} && len(members)%2 == 0 || len(m.ch) == cap(m.ch)) {
					fr := <-m.ch
					if fr.Seq > 0 {
						require.LessOrEqual(t, times[fr.Seq], cut, "frame %s at seq %d", fr.Type, fr.Seq)
					}
					var ents map[string]wire.WatchEntity
					switch fr.Type {
					case wire.TypeKeyframe:
						ents = decodeKeyframe(t, fr).Entities
					case wire.TypeWatchDelta:
						ents = decodeDelta(t, fr).Entities
					default: // an aggregate: the best x is the seq that set it
						var v wire.ViewFrame
						require.NoError(t, json.Unmarshal(fr.Data, &v))
						for _, best := range v.Groups {
							require.LessOrEqual(t, times[uint64(best.Int)], cut)
						}
					}
					for _, we := range ents {
						require.LessOrEqual(t, times[we.Version], cut)
					}
				}
			}
		}
		seq := uint64(0)
		for len(data) >= 2 {
			op, arg := data[0]%4, data[1]
			data = data[2:]
			switch op {
			case 0: // an event stamped arg seconds around now, the leader's clock
				seq++
				at := now.Add(time.Duration(int(arg)-128) * time.Second / 4)
				times[seq] = at.UnixNano()
				p.delay.Push(ev(seq, at))
			case 1: // time passes
				now = now.Add(time.Duration(arg) * time.Second / 8)
				require.NoError(t, p.step(now))
			case 2: // a viewer joins
				m, err := p.Join(View{})
				require.NoError(t, err)
				members = append(members, m)
			case 3: // a viewer leaves
				if len(members) > 0 {
					i := int(arg) % len(members)
					p.Leave(members[i])
					members = append(members[:i], members[i+1:]...)
				}
			}
			check() // at once: a frame must be old enough when it is made
		}
	})
}
