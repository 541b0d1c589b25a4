package store

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// hpCapped is a validator with a reason code of its own.
type hpCapped struct{}

type codedErr string

func (e codedErr) Error() string { return string(e) }
func (e codedErr) Code() string  { return string(e) }

func (hpCapped) Validate(_ fsm.View, a *fsm.Action, _ int64) error {
	for _, o := range a.Ops {
		if o.Field == "hp" && o.Value.Compare(fsm.Int(100)) > 0 {
			return codedErr("hp_cap")
		}
	}
	return nil
}

// TestRejectionsAreCountedByRuleAndCodeOnTheLeaderOnce: a declared
// action's failing precondition counts under the action and the
// precondition's name, a raw action refused by a validator under raw and
// the validator's code; an applied action and the duplicate of a rejected
// one count nothing, and the followers count nothing.
func TestRejectionsAreCountedByRuleAndCodeOnTheLeaderOnce(t *testing.T) {
	c := newCluster(t, 2, func(cfg *Config) {
		cfg.FSM.Validators = []fsm.Validator{hpCapped{}}
		cfg.NodeVersions = func(string) (fsm.Versions, bool) { return fsm.Supported(), true } // declared actions: log version 3
	})
	l := c.leader()
	var rules fsm.Rules
	require.NoError(t, json.Unmarshal([]byte(`{"actions":{"jump":{
		"pre":[{"name":"grounded","expr":"false"}],
		"effects":[{"op":"set","entity":"caller.id","field":"z","value":"1"}]}}}`), &rules))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, l.CreateWorld(ctx, "w", rules))

	jump := &fsm.Action{World: "w", Player: "ann", Seq: 1, Name: "jump"}
	for range 2 { // the retry is a duplicate: counted once
		ev, _, err := l.Act(ctx, jump)
		require.NoError(t, err)
		require.Equal(t, fsm.StatusRejected, ev.Status)
		require.Equal(t, "grounded", ev.Reason)
	}
	for seq, hp := range []int64{500, 50} {
		_, _, err := l.Act(ctx, &fsm.Action{World: "w", Player: "bob", Seq: uint64(seq + 1),
			Ops: []fsm.Op{{Kind: fsm.OpSet, Entity: "bob", Field: "hp", Value: fsm.Int(hp)}}})
		require.NoError(t, err)
	}
	c.waitReplicated()
	got := map[string]float64{}
	for _, s := range c.nodes {
		for _, rule := range []string{"jump/grounded", "raw/hp_cap"} {
			r, code, _ := strings.Cut(rule, "/")
			got[s.cfg.ID+" "+rule] = testutil.ToFloat64(s.metrics.rejections.vec.WithLabelValues(r, code))
		}
	}
	for _, s := range c.nodes {
		want := 0.0
		if s == l {
			want = 1
		}
		require.Equal(t, want, got[s.cfg.ID+" jump/grounded"], "node %s", s.cfg.ID)
		require.Equal(t, want, got[s.cfg.ID+" raw/hp_cap"], "node %s", s.cfg.ID)
	}
	require.Equal(t, 2, testutil.CollectAndCount(l.metrics.rejections.vec), "no series for the applied action")
}

// TestRejectionLabelsAreBoundedAndNeverTheCallersActionName: an action
// name the rules do not declare is the caller's choice, so it is labelled
// other; past the bound, new pairs fold into other/other while known
// pairs keep counting.
func TestRejectionLabelsAreBoundedAndNeverTheCallersActionName(t *testing.T) {
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "x"}, []string{"rule", "code"})
	r := newRejectionCounter(vec, 2)
	r.count("", fsm.CodeForbidden)
	r.count("player-chosen-name", fsm.CodeUnknownAction)
	r.count("attack", "cooldown") // the third pair: past the bound
	r.count("move", "too_fast")
	r.count("", fsm.CodeForbidden) // known: still its own
	require.Equal(t, 2.0, testutil.ToFloat64(vec.WithLabelValues(RawRule, fsm.CodeForbidden)))
	require.Equal(t, 1.0, testutil.ToFloat64(vec.WithLabelValues(OtherLabel, fsm.CodeUnknownAction)))
	require.Equal(t, 2.0, testutil.ToFloat64(vec.WithLabelValues(OtherLabel, OtherLabel)))
	require.Equal(t, 3, testutil.CollectAndCount(vec))
}
