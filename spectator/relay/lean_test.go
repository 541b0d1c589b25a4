package relay

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/anticheat/audit"
	"github.com/gsd-dev/gsd/wire"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// leanAnswer answers whole lines ls in the lean form when asked for it
// (form=lean, with the answer's header), but those of the indexes in
// whole, which go whole (as a node sends an event the lean form cannot
// carry exactly); asked without form=lean, it answers them whole.
func leanAnswer(t *testing.T, ls []string, whole ...int) func(w http.ResponseWriter, r *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("form") != wire.EventFormLean {
			hang(ls...)(w, r)
			return
		}
		w.Header().Set(wire.EventFormHeader, wire.EventFormLean)
		out := make([]string, len(ls))
		for i, l := range ls {
			out[i] = l
			if !containsInt(whole, i) {
				var e wire.Event
				require.NoError(t, json.Unmarshal([]byte(l), &e))
				b, err := json.Marshal(wire.Lean(&e))
				require.NoError(t, err)
				out[i] = string(b) + "\n"
			}
		}
		hang(out...)(w, r)
	}
}

func containsInt(xs []int, x int) bool {
	for _, y := range xs {
		if x == y {
			return true
		}
	}
	return false
}

// leanUpstream serves arena's events by answer and tr's checkpoint signed
// by k.
func leanUpstream(t *testing.T, tr *tree, k audit.SigningKey, answer http.HandlerFunc) string {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/worlds/arena/events", answer)
	note := tr.signed(k)
	mux.HandleFunc("GET /v1/worlds/arena/audit/checkpoint", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(note) })
	ts := httptest.NewServer(mux)
	t.Cleanup(func() {
		ts.CloseClientConnections()
		ts.Close()
	})
	return ts.URL
}

// A relay asks for the lean form and serves each lean line rebuilt: its
// event stream is the upstream's whole lines byte for byte (a whole line
// amid lean ones included), its leaf check verifies them against the
// signed tree, and it counts the bytes it received (the lean ones).
func TestRelayServesALeanUpstreamsLinesWholeAndChecksTheirLeaves(t *testing.T) {
	k, v := auditKey(t, "gsd-audit")
	tr := newTree(t, "arena", "p")
	tr.grow(4)
	up := leanUpstream(t, tr, k, leanAnswer(t, tr.lines, 2))
	r, base := startRelay(t, up, "", func(c *Config) {
		c.AuditKeys, c.CheckpointInterval = []audit.VerifyingKey{v}, 10*time.Millisecond
	})
	whole := strings.Join(tr.lines, "")
	require.Equal(t, whole, string(readEvents(t, base, "", 1, 4)))
	require.Eventually(t, func() bool { return testutil.ToFloat64(r.checkpoints.leavesVerified) > 0 }, 10*time.Second, 5*time.Millisecond)
	require.Zero(t, testutil.ToFloat64(r.checkpoints.failures.WithLabelValues(ReasonLeaves)))
	got := testutil.ToFloat64(r.metrics.received)
	require.Positive(t, got)
	require.Less(t, got, float64(len(whole)), "the bytes received are the lean lines'")
}

// A lean line that is not the signed event (its value altered) is refused
// as a whole one would be: reason leaves.
func TestRelayRefusesAnAlteredLeanEvent(t *testing.T) {
	k, v := auditKey(t, "gsd-audit")
	tr := newTree(t, "arena", "p")
	tr.grow(3)
	sent := append([]string(nil), tr.lines...)
	sent[1] = strings.Replace(sent[1], `"value":2`, `"value":99`, 1)
	require.NotEqual(t, tr.lines[1], sent[1])
	up := leanUpstream(t, tr, k, leanAnswer(t, sent))
	r, base := startRelay(t, up, "", func(c *Config) {
		c.AuditKeys, c.CheckpointInterval = []audit.VerifyingKey{v}, 10*time.Millisecond
	})
	openEvents(t, base)
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(r.checkpoints.failures.WithLabelValues(ReasonLeaves)) > 0
	}, 10*time.Second, 5*time.Millisecond)
}

// Against a real node the relay gets the lean form: what it serves is
// the node's stream byte for byte, for fewer bytes received than the
// node's whole lines.
func TestRelayFollowsARealNodeInTheLeanForm(t *testing.T) {
	p := playNode(t, "s")
	r, base := startRelay(t, p.n.url, p.viewer, nil)
	want := p.want
	require.Equal(t, string(want), string(readEvents(t, base, "", 1, p.last)))
	got := testutil.ToFloat64(r.metrics.received)
	require.Positive(t, got)
	require.Less(t, got, float64(len(want)), "lean lines from the node")
}

// A lean stream's line that is neither an event nor an error is
// malformed; its error line is the upstream's error.
func TestParseLeanLine(t *testing.T) {
	_, _, _, err := parseLeanLine([]byte("[1]\n"), "arena")
	require.ErrorIs(t, err, wire.ErrMalformed)
	_, _, _, err = parseLeanLine([]byte(`{"code":"archive_gap","error":"gone"}`), "arena")
	var ue *UpstreamError
	require.ErrorAs(t, err, &ue)
	require.Equal(t, "archive_gap", ue.Code)
	ev, wev, line, err := parseLeanLine([]byte("{}\n"), "arena")
	require.NoError(t, err)
	require.Nil(t, ev)
	require.Nil(t, wev)
	require.Nil(t, line)
	// A line this relay would not encode the same (here: it leaves out
	// fields the relay writes) is not rebuilt: the follow asks whole.
	_, _, _, err = parseLeanLine([]byte(`{"seq":1,"status":"odd"}`), "arena")
	require.ErrorIs(t, err, errLeanUnread)
}

// UpstreamFormWhole asks for whole lines (no form=): the upstream sends
// them, and the relay serves them as received.
func TestRelayAsksForWholeLinesWhenTold(t *testing.T) {
	k, _ := auditKey(t, "gsd-audit")
	tr := newTree(t, "arena", "p")
	tr.grow(3)
	var asked atomic.Int32
	answer := leanAnswer(t, tr.lines)
	up := leanUpstream(t, tr, k, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Has("form") {
			asked.Add(1)
		}
		answer(w, r)
	})
	r, base := startRelay(t, up, "", func(c *Config) { c.UpstreamForm = UpstreamFormWhole })
	whole := strings.Join(tr.lines, "")
	require.Equal(t, whole, string(readEvents(t, base, "", 1, 3)))
	require.Zero(t, asked.Load(), "no form= asked")
	require.Equal(t, float64(len(whole)), testutil.ToFloat64(r.metrics.received))
}

// UpstreamForm is lean or whole.
func TestConfigRefusesAnUnknownUpstreamForm(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Upstream = "http://127.0.0.1:1"
	require.Equal(t, UpstreamFormLean, cfg.UpstreamForm)
	require.NoError(t, cfg.Validate())
	cfg.UpstreamForm = UpstreamFormWhole
	require.NoError(t, cfg.Validate())
	cfg.UpstreamForm = "" // lean, as a Config built without DefaultConfig has it
	require.NoError(t, cfg.Validate())
	for _, f := range []string{"LEAN", "tiny"} {
		cfg.UpstreamForm = f
		require.ErrorContains(t, cfg.Validate(), "UpstreamForm")
	}
}

// BenchmarkParseUpstreamLine is the relay's CPU per event line received,
// whole or lean (rebuilt whole: a JSON encoding more).
func BenchmarkParseUpstreamLine(b *testing.B) {
	v := wire.Int(512)
	e := wire.Event{World: "bench", Seq: 40123, Index: 80211, Time: 1796601600502023260, Player: "p100", ClientSeq: 40,
		Priority: wire.PriorityNameBulk, Status: wire.StatusApplied,
		Versions: map[string]map[string]uint64{"p100": {"x": 40123, "y": 40123}},
		Changes: []wire.Change{{Entity: "p100", Field: "x", Op: "set", Value: &v, Version: 40123},
			{Entity: "p100", Field: "y", Op: "set", Value: &v, Version: 40123}}}
	whole, err := json.Marshal(e)
	require.NoError(b, err)
	lean, ok := wire.AppendLeanLine(nil, whole)
	require.True(b, ok)
	b.Run("whole", func(b *testing.B) {
		for range b.N {
			if _, _, err := parseLineWire(whole); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("lean", func(b *testing.B) {
		for range b.N {
			_, _, line, err := parseLeanLine(lean, "bench")
			if err != nil || len(line) != len(whole)+1 {
				b.Fatal(err, string(line))
			}
		}
	})
}

// newerUpstream serves arena's first n events as a newer node would:
// seq 2's line has a key this relay does not know (first), asked whole
// and asked lean (its lean line with the key; the others cut by
// wire.AppendLeanForm, so that a line the lean form cannot carry goes
// whole). edit may change the whole lines first (not seq 2's). It
// returns the upstream, its whole lines and the requests by form.
func newerUpstream(t *testing.T, n int64, edit func(whole []string)) (url string, whole []string, leanAsks, wholeAsks *atomic.Int32) {
	k, _ := auditKey(t, "gsd-audit")
	tr := newTree(t, "arena", "p")
	tr.grow(n)
	newer := func(l string) string { return `{"tick":42,` + strings.TrimPrefix(l, "{") }
	whole = append([]string(nil), tr.lines...)
	if edit != nil {
		edit(whole)
	}
	whole[1] = newer(tr.lines[1])
	leanAsks, wholeAsks = new(atomic.Int32), new(atomic.Int32)
	url = leanUpstream(t, tr, k, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("form") != wire.EventFormLean {
			wholeAsks.Add(1)
			hang(whole...)(w, r)
			return
		}
		leanAsks.Add(1)
		w.Header().Set(wire.EventFormHeader, wire.EventFormLean)
		out := make([]string, len(whole))
		for i, l := range whole {
			out[i] = string(wire.AppendLeanForm(nil, []byte(l)))
		}
		out[1] = newer(string(wire.AppendLeanForm(nil, []byte(tr.lines[1]))))
		hang(out...)(w, r)
	})
	return url, whole, leanAsks, wholeAsks
}

// A lean line with a key this relay does not know (a newer node's field)
// cannot be rebuilt exactly: the relay asks for whole lines from there on
// and serves the upstream's whole lines, the new key included, byte for
// byte.
func TestRelayAsksForWholeLinesWhenALeanLineHasAKeyItDoesNotKnow(t *testing.T) {
	up, whole, leanAsks, wholeAsks := newerUpstream(t, 3, nil)
	_, base := startRelay(t, up, "", nil)
	require.Equal(t, strings.Join(whole, ""), string(readEvents(t, base, "", 1, 3)))
	require.Equal(t, int32(1), leanAsks.Load(), "lean once")
	require.Positive(t, wholeAsks.Load(), "then whole")
}
