package streams

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"testing"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// openForm opens fog's event stream from seq 1 as tok's caller with
// query, and returns the answer (its body read by the test).
func (e *fogEnv) openForm(t *testing.T, query, tok string) *http.Response {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("%s/v1/worlds/fog/events?from=1%s", e.url, query), nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { cancel(); resp.Body.Close() })
	return resp
}

// linesTo reads sc's lines up to the one of seq last.
func linesTo(t *testing.T, sc *bufio.Scanner, last uint64) []string {
	t.Helper()
	var out []string
	for {
		l := next(t, sc)
		require.Empty(t, l.Code, l.raw)
		out = append(out, l.raw)
		if l.Seq >= last {
			return out
		}
	}
}

// form=lean gives every caller, cut to its view or not, delayed or not,
// the lines of its whole stream without what the reader rebuilds: the
// answer says so, and each lean line rebuilt (wire.LeanEvent.Event) is
// the whole stream's line byte for byte.
func TestLeanEventStreamRebuildsToTheWholeStreamsLines(t *testing.T) {
	e := newFogEnv(t)
	for _, c := range []struct{ name, query, player, role string }{
		{"a player", "", "bob", ""},
		{"a referee", "&view=referee", "ref", "referee"},
		{"a delayed caster", "&view=caster", "c1", "caster"},
		{"a game server", "", "gs", fsm.RoleServer},
	} {
		t.Run(c.name, func(t *testing.T) {
			tok := token(t, c.player, c.role)
			whole := e.openForm(t, c.query, tok)
			require.Equal(t, http.StatusOK, whole.StatusCode)
			require.Empty(t, whole.Header.Get(wire.EventFormHeader))
			want := linesTo(t, bufio.NewScanner(whole.Body), 8)

			lean := e.openForm(t, c.query+"&form=lean", tok)
			require.Equal(t, http.StatusOK, lean.StatusCode)
			require.Equal(t, wire.EventFormLean, lean.Header.Get(wire.EventFormHeader))
			got := linesTo(t, bufio.NewScanner(lean.Body), 8)
			require.Len(t, got, len(want))
			for i, l := range got {
				require.NotContains(t, l, `"world"`)
				require.NotContains(t, l, `"versions"`)
				var le wire.LeanEvent
				require.NoError(t, json.Unmarshal([]byte(l), &le))
				b, err := json.Marshal(le.Event("fog"))
				require.NoError(t, err)
				require.Equal(t, want[i], string(b))
			}
		})
	}
}

// Lean streams take fans of their own: their chunks hold other bytes.
func TestLeanAndWholeStreamsOfOneViewTakeFansOfTheirOwn(t *testing.T) {
	e := newFogEnv(t)
	whole := bufio.NewScanner(e.openForm(t, "", token(t, "bob", "")).Body)
	lean := bufio.NewScanner(e.openForm(t, "&form=lean", token(t, "bob", "")).Body)
	linesTo(t, whole, 8)
	linesTo(t, lean, 8)
	e.s.views.mu.Lock()
	fans := len(e.s.views.fans)
	e.s.views.mu.Unlock()
	require.Equal(t, 2, fans, "bob's view: one fan of whole lines, one of lean ones")
}

// Another form is malformed, before the stream opens.
func TestEventStreamRefusesAnUnknownForm(t *testing.T) {
	e := newFogEnv(t)
	resp := e.openForm(t, "&form=tiny", token(t, "gs", fsm.RoleServer))
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	var body edge.ErrorBody
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	require.Equal(t, wire.CodeMalformed, body.Code)
	require.Contains(t, body.Error, "form")
}

// An event whose lean line would not rebuild it exactly (a float -0
// reads back as the int 0) goes whole in a lean stream: its line is the
// whole stream's, world included; others go lean.
func TestLeanStreamSendsWholeWhatTheLeanFormCannotCarry(t *testing.T) {
	ev := &fsm.Event{World: "w", Seq: 3, Player: "p", Status: fsm.StatusApplied,
		Changes: []fsm.Change{{Entity: "e", Field: "f", Op: fsm.OpSet, Value: fsm.Float(math.Copysign(0, -1)), Version: 3}}}
	whole, err := appendLine(nil, ev)
	require.NoError(t, err)
	got, err := appendLean(nil, ev)
	require.NoError(t, err)
	require.Equal(t, string(whole), string(got))

	ev.Changes[0].Value = fsm.Float(0.5)
	got, err = appendLean(nil, ev)
	require.NoError(t, err)
	require.Equal(t, `{"seq":3,"index":0,"time":0,"player":"p","client_seq":0,"priority":"critical","status":"applied","changes":[{"entity":"e","field":"f","op":"set","value":0.5}]}`+"\n", string(got))
}
