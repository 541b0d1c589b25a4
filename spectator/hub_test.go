package spectator

import (
	"errors"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fanout"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// hubWorld is a hub over one game's feed, recording where it subscribed.
type hubWorld struct {
	g     *game
	fd    *feed
	rules fsm.Rules
	clk   *clock

	mu    sync.Mutex
	froms []uint64
}

func newHubWorld(t *testing.T) *hubWorld {
	r := fsm.Rules{Fields: strFields("x", "plan", "side"), Schema: fsm.Schema{
		Access:  map[string]fsm.FieldAccess{"plan": {Visible: "team"}},
		Teams:   fsm.TeamRule{From: "claim", Key: "team"},
		Viewers: map[string]fsm.ViewerRule{"tv": {Delay: fsm.Duration(time.Minute)}},
	}}
	hw := &hubWorld{g: newGame(t, "w", r.Fields), fd: newFeed(), rules: r}
	hw.clk = &clock{now: time.Unix(0, t0)}
	return hw
}

func (hw *hubWorld) config() HubConfig {
	pc := DefaultConfig()
	pc.Tick, pc.Now = time.Millisecond, hw.clk.Now
	return HubConfig{
		Subscribe: func(w string, from uint64) (fanout.Subscription, error) {
			hw.mu.Lock()
			hw.froms = append(hw.froms, from)
			hw.mu.Unlock()
			return hw.fd.subscribe(w, from)
		},
		Rules: func(w string) (fsm.Rules, error) {
			if w != "w" {
				return fsm.Rules{}, fsm.ErrUnknownWorld
			}
			return hw.rules, nil
		},
		TeamOf: func(string) TeamFunc {
			return func(p string) string { return map[string]string{"ann": "red", "bob": "red"}[p] }
		},
		Pipeline: pc,
	}
}

func TestHubSharesAPipelinePerWorldAndDelay(t *testing.T) {
	hw := newHubWorld(t)
	h, err := NewHub(hw.config())
	require.NoError(t, err)
	defer h.Close()
	hw.fd.push(hw.g.act("ann", set("ann", "x", fsm.String("1")), set("ann", "plan", fsm.String("rush"))))
	hw.clk.set(time.Unix(0, hw.g.time))

	red, err := h.Join("w", Viewer{Player: "bob", Team: "red"})
	require.NoError(t, err)
	pub, err := h.Join("w", Viewer{})
	require.NoError(t, err)
	require.Equal(t, 1, h.Pipelines(), "no delay: one pipeline")
	tv, err := h.Join("w", Viewer{Class: "tv"})
	require.NoError(t, err)
	require.Equal(t, 2, h.Pipelines(), "a minute's delay: its own")
	require.Same(t, tv.m.InFlight(), tv.InFlight(), "a watch's frames in flight are its member's")

	k := decodeKeyframe(t, <-red.Frames())
	if k.Seq == 0 { // joined before the first tick released the event
		k.Entities = decodeDelta(t, <-red.Frames()).Entities
	}
	require.Contains(t, k.Entities["ann"].Fields, "plan", "the claim says bob is on ann's team")
	k = decodeKeyframe(t, <-tv.Frames())
	require.Zero(t, k.Seq, "a minute has not passed")

	pub.Close()
	red.Close()
	require.Equal(t, 1, h.Pipelines(), "the last viewer stops its pipeline")
	require.Nil(t, tv.Err())
	tv.Close()
	require.Zero(t, h.Pipelines())
}

func TestHubRefusesWhatItCannotServe(t *testing.T) {
	hw := newHubWorld(t)
	h, err := NewHub(hw.config())
	require.NoError(t, err)
	defer h.Close()
	_, err = h.Join("nowhere", Viewer{})
	require.ErrorIs(t, err, fsm.ErrUnknownWorld)
	_, err = h.Join("w", Viewer{Class: "director"})
	require.ErrorIs(t, err, ErrUnknownClass)
	hw.rules.Schema.Views = map[string]fsm.ViewRule{"kills": {Kind: "feed", Field: "x", By: "team"}}
	_, err = h.Join("w", Viewer{})
	require.ErrorIs(t, err, ErrBadRules)
	hw.rules.Schema.Views = nil
	hw.rules.Schema.Access["plan"] = fsm.FieldAccess{Visible: "secret"}
	_, err = h.Join("w", Viewer{})
	require.ErrorIs(t, err, ErrBadRules)

	_, err = NewHub(HubConfig{})
	require.Error(t, err)
	cfg := hw.config()
	cfg.Pipeline.Queue = 0
	h2, err := NewHub(cfg)
	require.NoError(t, err)
	_, err = h2.Join("w", Viewer{Class: "tv"})
	require.Error(t, err, "the pipeline's config is checked")
}

func TestHubStartsFromASeedOrTheFeedWhenTheSeedIsTooNew(t *testing.T) {
	hw := newHubWorld(t)
	hw.fd.push(hw.g.act("ann", set("ann", "x", fsm.String("1"))))
	e, err := hw.g.f.Entity("w", "ann")
	require.NoError(t, err)
	hw.clk.set(time.Unix(0, hw.g.time))
	cfg := hw.config()
	seeds := 0
	cfg.Seed = func(string) (*State, error) {
		seeds++
		return SeedState("w", 1, hw.g.time, []fsm.EntityView{e}), nil
	}
	h, err := NewHub(cfg)
	require.NoError(t, err)
	defer h.Close()
	live, err := h.Join("w", Viewer{})
	require.NoError(t, err)
	tv, err := h.Join("w", Viewer{Class: "tv"})
	require.NoError(t, err)
	require.Equal(t, 2, seeds)
	hw.mu.Lock()
	require.Equal(t, []uint64{2, 1}, hw.froms, "the live view from the seed, the delayed one from the start")
	hw.mu.Unlock()
	require.Equal(t, uint64(1), decodeKeyframe(t, <-live.Frames()).Seq)
	require.Zero(t, decodeKeyframe(t, <-tv.Frames()).Seq)
	live.Close()
	tv.Close()

	cfg.Seed = func(string) (*State, error) { return nil, errors.New("no state") }
	h2, err := NewHub(cfg)
	require.NoError(t, err)
	_, err = h2.Join("w", Viewer{})
	require.ErrorContains(t, err, "no state")
}

func TestHubReplacesAPipelineWhoseFeedFailed(t *testing.T) {
	hw := newHubWorld(t)
	h, err := NewHub(hw.config())
	require.NoError(t, err)
	defer h.Close()
	w1, err := h.Join("w", Viewer{})
	require.NoError(t, err)
	hw.fd.fail(errors.New("archive gap"))
	for range w1.Frames() {
	}
	require.ErrorContains(t, w1.Err(), "archive gap")
	hw.fd.mu.Lock()
	hw.fd.err = nil // the gap is filled
	hw.fd.mu.Unlock()
	w2, err := h.Join("w", Viewer{})
	require.NoError(t, err)
	require.Equal(t, wire.TypeKeyframe, (<-w2.Frames()).Type)
	w1.Close() // the old pipeline's viewer: does not stop the new one
	require.Equal(t, 1, h.Pipelines())
	w2.Close()
	require.Zero(t, h.Pipelines())
}

func TestHubCloseEndsEveryWatch(t *testing.T) {
	hw := newHubWorld(t)
	h, err := NewHub(hw.config())
	require.NoError(t, err)
	w, err := h.Join("w", Viewer{})
	require.NoError(t, err)
	h.Close()
	for range w.Frames() {
	}
	require.ErrorIs(t, w.Err(), ErrClosed)
	w.Close()
	_, err = h.Join("w", Viewer{})
	require.ErrorIs(t, err, ErrClosed)
}

func TestHubJoinEventsServesAFilteredEventStream(t *testing.T) {
	hw := newHubWorld(t)
	h, err := NewHub(hw.config())
	require.NoError(t, err)
	defer h.Close()
	w, err := h.JoinEvents("w", Viewer{Player: "cat"})
	require.NoError(t, err)
	defer w.Close()
	require.Equal(t, wire.TypeKeyframe, (<-w.Frames()).Type)
	hw.fd.push(hw.g.act("ann", set("ann", "plan", fsm.String("rush"))), hw.g.act("ann", set("ann", "x", fsm.String("1"))))
	hw.clk.set(time.Unix(0, hw.g.time))
	f := <-w.Frames()
	require.Equal(t, wire.TypeEvents, f.Type)
	require.NotContains(t, string(f.Data), "rush", "cat is not on ann's team")
	require.Contains(t, string(f.Data), `"seq":2`)
}

func TestHubEndsPipelinesWhoseRulesChanged(t *testing.T) {
	hw := newHubWorld(t)
	h, err := NewHub(hw.config())
	require.NoError(t, err)
	defer h.Close()
	old, err := h.Join("w", Viewer{Player: "bob", Team: "red"})
	require.NoError(t, err)
	oldTV, err := h.Join("w", Viewer{Class: "tv"})
	require.NoError(t, err)
	hw.rules.Schema.Access = map[string]fsm.FieldAccess{"plan": {Visible: "hidden"}} // stricter
	w, err := h.Join("w", Viewer{Player: "bob", Team: "red"})
	require.NoError(t, err)
	defer w.Close()
	for range old.Frames() {
	}
	require.ErrorIs(t, old.Err(), ErrRulesChanged, "its pipeline enforced the old rules")
	for range oldTV.Frames() {
	}
	require.ErrorIs(t, oldTV.Err(), ErrRulesChanged, "every pipeline of the world")
	old.Close()
	oldTV.Close()
	require.Equal(t, 1, h.Pipelines())
	hw.fd.push(hw.g.act("ann", set("ann", "plan", fsm.String("rush")), set("ann", "x", fsm.String("1"))))
	hw.clk.set(time.Unix(0, hw.g.time))
	for f := range w.Frames() {
		require.NotContains(t, string(f.Data), "rush")
		if f.Seq == 1 {
			break
		}
	}

	hw.rules.Schema.Interest = fsm.InterestRule{Cell: math.NaN()}
	_, err = h.Join("w", Viewer{})
	require.ErrorIs(t, err, ErrBadRules, "rules it cannot compare")
}

func TestHubRulesChangedEndsTheWorldsViewers(t *testing.T) {
	hw := newHubWorld(t)
	h, err := NewHub(hw.config())
	require.NoError(t, err)
	defer h.Close()
	w, err := h.Join("w", Viewer{})
	require.NoError(t, err)
	h.RulesChanged("elsewhere")
	require.Equal(t, 1, h.Pipelines())
	h.RulesChanged("w")
	for range w.Frames() {
	}
	require.ErrorIs(t, w.Err(), ErrRulesChanged)
	require.Zero(t, h.Pipelines())
	w.Close()
}

func TestHubStopsAPipelineWhoseFirstJoinFailed(t *testing.T) {
	hw := newHubWorld(t)
	hw.g.act("ann", set("ann", "x", fsm.String("1")))
	e, err := hw.g.f.Entity("w", "ann")
	require.NoError(t, err)
	e.Fields[0].Value = fsm.Float(math.NaN()) // no JSON for it: the keyframe cannot be made
	cfg := hw.config()
	cfg.Seed = func(string) (*State, error) { return SeedState("w", 1, 0, []fsm.EntityView{e}), nil }
	h, err := NewHub(cfg)
	require.NoError(t, err)
	defer h.Close()
	_, err = h.Join("w", Viewer{})
	require.Error(t, err)
	require.Zero(t, h.Pipelines())
}

// Hub.Views answers from the pipeline of the viewer's delay, started for
// the call when none runs and stopped after it; its errors are Join's.
func TestHubViewsAnswerFromThePipelineOfTheViewersDelay(t *testing.T) {
	hw := newHubWorld(t)
	hw.rules.Schema.Views = map[string]fsm.ViewRule{"xs": {Kind: "count", Field: "x"}, "plans": {Kind: "count", Field: "plan"}}
	h, err := NewHub(hw.config())
	require.NoError(t, err)
	defer h.Close()
	hw.fd.push(hw.g.act("ann", set("ann", "x", fsm.String("1")), set("ann", "plan", fsm.String("rush"))))
	hw.clk.set(time.Unix(0, hw.g.time))

	tv, err := h.Join("w", Viewer{Class: "tv"})
	require.NoError(t, err)
	defer tv.Close()
	seq, views, err := h.Views("w", Viewer{Class: "tv"})
	require.NoError(t, err)
	require.Zero(t, seq, "a minute has not passed")
	require.Equal(t, []wire.ViewFrame{{Type: wire.TypeView, World: "w", Name: "xs", Kind: "count", Groups: map[string]wire.Value{}}}, views,
		"plan is a team's: its count is for no spectator")
	require.Equal(t, 1, h.Pipelines(), "the running pipeline answered")

	_, _, err = h.Views("w", Viewer{Class: "director"})
	require.ErrorIs(t, err, ErrUnknownClass)
	require.Equal(t, 1, h.Pipelines(), "nothing left running")
}

// A pipeline that answered Views runs on for ViewsLinger, so a caller who
// polls reads one pipeline that follows the feed; each call renews it, and
// it stops after the linger, or with the hub.
func TestHubKeepsAViewsPipelineForItsLinger(t *testing.T) {
	hw := newHubWorld(t)
	hw.rules.Schema.Views = map[string]fsm.ViewRule{"xs": {Kind: "count", Field: "x"}}
	cfg := hw.config()
	cfg.ViewsLinger = time.Hour
	h, err := NewHub(cfg)
	require.NoError(t, err)
	hw.fd.push(hw.g.act("ann", set("ann", "x", fsm.String("1"))))
	hw.clk.set(time.Unix(0, hw.g.time))
	for range 3 {
		_, _, err := h.Views("w", Viewer{})
		require.NoError(t, err)
		require.Equal(t, 1, h.Pipelines(), "kept after the call")
	}
	hw.mu.Lock()
	require.Len(t, hw.froms, 1, "one pipeline answered every call")
	hw.mu.Unlock()
	// Its rules changed: the next call holds the new pipeline instead.
	h.RulesChanged("w")
	_, _, err = h.Views("w", Viewer{})
	require.NoError(t, err)
	require.Equal(t, 1, h.Pipelines())
	h.Close()
	require.Zero(t, h.Pipelines())
	_, _, err = h.Views("w", Viewer{})
	require.ErrorIs(t, err, ErrClosed)

	cfg.ViewsLinger = time.Millisecond
	h, err = NewHub(cfg)
	require.NoError(t, err)
	defer h.Close()
	_, _, err = h.Views("w", Viewer{})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return h.Pipelines() == 0 }, 10*time.Second, time.Millisecond, "stopped after its linger")
}
