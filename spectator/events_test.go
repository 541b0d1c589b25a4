package spectator

import (
	"encoding/json"
	"errors"
	"sync"
	"testing"

	"github.com/gsd-dev/gsd/fanout"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
)

// hiddenGame is a world whose "mine" field nobody sees, with n events,
// each setting ann's pos and mine.
func hiddenGame(t *testing.T, n int) (*Access, *game, *feed) {
	a := access(t, map[string]string{"pos": "", "mine": "hidden"}, nil, fsm.TeamRule{})
	g := newGame(t, "w", strFields("pos", "mine"))
	fd := newFeed()
	for i := range n {
		v := string(rune('a' + i))
		fd.push(g.act("ann", set("ann", "pos", fsm.String(v)), set("ann", "mine", fsm.String("secret-"+v))))
	}
	return a, g, fd
}

func TestEventsPreparesEachEventOnceForReadersAtAnyPosition(t *testing.T) {
	a, g, fd := hiddenGame(t, 6)
	e := NewEvents(a, NewState("w"), nil, fd.subscribe, 3)
	first := map[uint64]*Prepared{}
	for _, ev := range g.events[:4] {
		p, err := e.Prepare(ev)
		require.NoError(t, err)
		first[ev.Seq] = p
	}
	for _, ev := range g.events[1:4] { // a second reader, behind
		p, err := e.Prepare(ev)
		require.NoError(t, err)
		require.Same(t, first[ev.Seq], p, "prepared once")
	}
	_, err := e.Prepare(g.events[0])
	require.ErrorIs(t, err, ErrTooOld, "three held: 2, 3, 4")

	other := *g.events[2]
	other.Index++
	_, err = e.Prepare(&other)
	require.ErrorIs(t, err, ErrGap, "another event at a held seq")
	_, err = e.Prepare(&fsm.Event{World: "v", Seq: 5})
	require.ErrorIs(t, err, ErrGap)

	// A reader ahead: the event in between comes from the feed.
	p, err := e.Prepare(g.events[5])
	require.NoError(t, err)
	require.Equal(t, uint64(6), p.Event.Seq)
	require.Equal(t, uint64(6), e.filter.State().Seq())
	require.NotNil(t, e.Event(p, View{}))
	p5, err := e.Prepare(g.events[4])
	require.NoError(t, err)
	require.Equal(t, "e", p5.Event.Changes[0].Value.Str)
	require.Len(t, e.Event(p5, resolve(t, a, Viewer{})).Changes, 1, "mine is not there")
}

func TestEventsCatchUpFailsWhenTheFeedDoesNotHoldTheEventsBetween(t *testing.T) {
	a, g, _ := hiddenGame(t, 3)
	e := NewEvents(a, NewState("w"), nil, func(string, uint64) (fanout.Subscription, error) {
		return nil, errors.New("archive gap")
	}, 8)
	_, err := e.Prepare(g.events[2])
	require.ErrorContains(t, err, "archive gap")

	empty := newFeed() // holds nothing
	e = NewEvents(a, NewState("w"), nil, empty.subscribe, 8)
	_, err = e.Prepare(g.events[2])
	require.Error(t, err)

	bad := newFeed() // holds another history
	bad.push(&fsm.Event{World: "w", Seq: 1}, &fsm.Event{World: "w", Seq: 1})
	e = NewEvents(a, NewState("w"), nil, bad.subscribe, 8)
	_, err = e.Prepare(g.events[2])
	require.ErrorIs(t, err, ErrGap)
}

func TestEventsIsSafeForConcurrentReaders(t *testing.T) {
	a, g, fd := hiddenGame(t, 40)
	e := NewEvents(a, NewState("w"), nil, fd.subscribe, 64)
	got := make([][]*Prepared, 4)
	var wg sync.WaitGroup
	for r := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, ev := range g.events[r*5:] {
				p, err := e.Prepare(ev)
				if err != nil {
					t.Error(err)
					return
				}
				got[r] = append(got[r], p)
			}
		}()
	}
	wg.Wait()
	for r := range got {
		for i, p := range got[r] {
			require.Same(t, got[0][r*5+i], p)
		}
	}
}

func TestEventsEncoderFeedsAFanOutViewsFilteredStream(t *testing.T) {
	a, g, fd := hiddenGame(t, 0)
	e := NewEvents(a, NewState("w"), nil, fd.subscribe, 256)
	line := func(b []byte, ev *fsm.Event) ([]byte, error) {
		j, err := json.Marshal(ev.Wire())
		return append(append(b, j...), '\n'), err
	}
	cfg := fanout.DefaultConfig()
	cfg.Subscribe = fd.subscribe
	cfg.Encode = e.Encoder(resolve(t, a, Viewer{}), line)
	h, err := fanout.New(cfg)
	require.NoError(t, err)
	defer h.Close()
	m, next := h.Attach(fanout.Key{World: "w"}, 1)
	require.Equal(t, uint64(1), next)
	fd.push(g.act("ann", set("ann", "pos", fsm.String("1")), set("ann", "mine", fsm.String("secret"))),
		g.act("bob", set("bob", "mine", fsm.String("secret2"))), // nothing to see
		g.act("ann", set("ann", "pos", fsm.String("2"))))
	var c *fanout.Chunk
	for c = range m.Chunks() {
		if c.End() == 4 {
			break
		}
	}
	require.NotNil(t, c)
	require.NotContains(t, string(c.From(c.First())), "secret")
	require.Equal(t, c.From(2), c.From(3), "bob's event takes no bytes")
	require.Contains(t, string(c.From(3)), `"seq":3`)
	h.Detach(m)

	// An encoder error ends the chunk (the fan's error path).
	enc := e.Encoder(View{}, line)
	_, _, err = enc(nil, nil, []*fsm.Event{{World: "v", Seq: 9}})
	require.ErrorIs(t, err, ErrGap)
	_, _, err = e.Encoder(View{}, func([]byte, *fsm.Event) ([]byte, error) { return nil, errors.New("full") })(nil, nil, g.events[:1])
	require.ErrorContains(t, err, "full")
}
