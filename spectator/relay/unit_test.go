package relay

import (
	"bytes"
	"compress/flate"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/spectator"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// line is the NDJSON line of an event of world w at seq setting e1's x.
func line(t *testing.T, seq uint64, x int64) string {
	t.Helper()
	ev := &fsm.Event{World: "arena", Seq: seq, Index: seq + 10, Time: time.Now().UnixNano(), Player: "p",
		Status: fsm.StatusApplied, Changes: []fsm.Change{{Entity: "e1", Field: "x", Op: fsm.OpSet, Value: fsm.Int(x), Version: seq}}}
	b, err := json.Marshal(ev)
	require.NoError(t, err)
	return string(b) + "\n"
}

// fake is an upstream whose answers the test scripts: each request gets
// the next answer; the last one repeats.
type fake struct {
	t       *testing.T
	mu      sync.Mutex
	answers []func(w http.ResponseWriter, r *http.Request)
}

func newFake(t *testing.T, answers ...func(w http.ResponseWriter, r *http.Request)) string {
	f := &fake{t: t, answers: answers}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/views") {
			http.NotFound(w, r) // an upstream without the views route: no views
			return
		}
		f.mu.Lock()
		a := f.answers[0]
		if len(f.answers) > 1 {
			f.answers = f.answers[1:]
		}
		f.mu.Unlock()
		a(w, r)
	}))
	t.Cleanup(func() {
		ts.CloseClientConnections()
		ts.Close()
	})
	return ts.URL
}

// lines answers the given lines, then ends the stream.
func lines(ls ...string) func(w http.ResponseWriter, r *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-ndjson")
		for _, l := range ls {
			_, _ = w.Write([]byte(l))
		}
	}
}

// hang answers the lines, then holds the stream open until the client
// goes.
func hang(ls ...string) func(w http.ResponseWriter, r *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		lines(ls...)(w, r)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}
}

func refuse(status int, body string) func(w http.ResponseWriter, r *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}
}

// An upstream that refuses for a while (503, 502 without a JSON body),
// ends streams and sends keep-alives: the relay resumes from the seq
// after the last it holds each time.
func TestFollowRetriesWhatTheUpstreamMayFixAndResumesBySeq(t *testing.T) {
	var mu sync.Mutex
	var froms []uint64
	record := func(a func(http.ResponseWriter, *http.Request)) func(http.ResponseWriter, *http.Request) {
		return func(w http.ResponseWriter, r *http.Request) {
			from, err := strconv.ParseUint(r.URL.Query().Get("from"), 10, 64)
			require.NoError(t, err)
			mu.Lock()
			froms = append(froms, from)
			mu.Unlock()
			a(w, r)
		}
	}
	up := newFake(t,
		record(lines(line(t, 1, 1), "\n", `{"seq":0}`+"\n", line(t, 2, 2))),
		record(refuse(http.StatusServiceUnavailable, `{"code":"not_ready","error":"no leader"}`)),
		record(refuse(http.StatusBadGateway, `not json`)),
		record(lines(line(t, 2, 2), line(t, 4, 4))),
		record(hang(line(t, 5, 5))),
	)
	_, base := startRelay(t, up, "", nil)
	got := readEvents(t, base, "", 1, 5)
	require.Equal(t, line(t, 1, 1)[:20], string(got[:20]))
	require.Equal(t, []uint64{1, 2, 4, 5}, seqs(t, got))
	mu.Lock()
	require.Equal(t, []uint64{1, 3, 3, 3, 5}, froms)
	mu.Unlock()
}

// The world's rules changed upstream: what the relay holds was cut under
// the old ones, so its readers end (watchers with 4409, event streams
// with the upstream's line) and the next viewer reads the world anew
// from seq 1, cut under the new rules.
func TestFollowEndsWhenTheRulesChangeAndTheNextViewerReadsAnew(t *testing.T) {
	rulesChanged := fmt.Sprintf(`{"code":"unavailable","error":"gsd/api: unavailable: %s: open the stream again from the next seq"}`+"\n", spectator.ErrRulesChanged)
	change := make(chan struct{})
	up := newFake(t,
		func(w http.ResponseWriter, r *http.Request) {
			lines(line(t, 1, 1))(w, r)
			w.(http.Flusher).Flush()
			select {
			case <-change:
				_, _ = w.Write([]byte(rulesChanged))
			case <-r.Context().Done():
			}
		},
		hang(line(t, 1, 9), line(t, 2, 2)),
	)
	r, base := startRelay(t, up, "", nil)
	c := dial(t, base, "", "")
	watchState(t, c, 1)
	resp, err := http.Get(base + "/v1/worlds/arena/events?from=1")
	require.NoError(t, err)
	defer resp.Body.Close()
	close(change)
	b, err := io.ReadAll(resp.Body) // the stream ends with the change
	require.NoError(t, err)
	require.Equal(t, line(t, 1, 1)[:30], string(b[:30]))
	require.Contains(t, string(b), `{"code":"unavailable","error":"gsd/spectator: the world's rules changed`)
	err = nil
	for err == nil {
		_, _, err = c.Read(t.Context())
	}
	require.Equal(t, CloseRulesChanged, websocket.CloseStatus(err), "%v", err)
	got := readEvents(t, base, "", 1, 2)
	require.Equal(t, []uint64{1, 2}, seqs(t, got))
	require.Contains(t, string(got), `"value":9`, "read anew from seq 1")
	require.Eventually(t, func() bool { return r.following() == 1 }, 10*time.Second, time.Millisecond)
}

// What the relay cannot fix ends the follow: its readers get the error
// after the events it held, and the next viewer opens a new follow.
func TestFollowEndsOnWhatRetryingCannotFix(t *testing.T) {
	for name, bad := range map[string]string{
		"gap":         `{"code":"archive_gap","error":"gone"}` + "\n",
		"undecodable": "{nope\n",
		"other world": strings.Replace(line(t, 2, 2), `"arena"`, `"elsewhere"`, 1),
		"bad status":  strings.Replace(line(t, 2, 2), `"applied"`, `"maybe"`, 1),
	} {
		t.Run(name, func(t *testing.T) {
			up := newFake(t, lines(line(t, 1, 1), bad), hang(line(t, 1, 1), line(t, 2, 2)))
			_, base := startRelay(t, up, "", nil)
			code, body := get(t, base+"/v1/worlds/arena/events?from=1")
			require.Equal(t, http.StatusOK, code)
			require.Equal(t, line(t, 1, 1)[:30], body[:30])
			require.Contains(t, body, `"code":`)
			// A new viewer opens the world anew.
			got := readEvents(t, base, "", 1, 2)
			require.Equal(t, []uint64{1, 2}, seqs(t, got))
		})
	}
}

// A relay's watch serves msgpack to viewers that ask for it, and a
// viewer's delay on top of the upstream's.
func TestRelayWatchSpeaksMsgpackAndDelays(t *testing.T) {
	up := newFake(t, hang(line(t, 1, 1), line(t, 2, 2)))
	_, base := startRelay(t, up, "", nil)
	opts := &websocket.DialOptions{Subprotocols: []string{wire.SubprotocolMsgpack}}
	c, _, err := websocket.Dial(t.Context(), "ws"+strings.TrimPrefix(base, "http")+"/v1/worlds/arena/watch", opts)
	require.NoError(t, err)
	defer c.CloseNow()
	typ, b, err := c.Read(t.Context())
	require.NoError(t, err)
	require.Equal(t, websocket.MessageBinary, typ)
	require.NotEmpty(t, b)

	// A delay of 300s holds both events: the keyframe shows nothing yet.
	d := dial(t, base, "", "?delay=300s")
	_, b, err = d.Read(t.Context())
	require.NoError(t, err)
	var k wire.Keyframe
	require.NoError(t, json.Unmarshal(b, &k))
	require.Equal(t, wire.TypeKeyframe, k.Type)
	require.Zero(t, k.Seq)
	require.Empty(t, k.Entities)
}

// A relay's watch serves deflated JSON to viewers that ask for it: the
// same frames as its JSON viewers get.
func TestRelayWatchSpeaksDeflate(t *testing.T) {
	up := newFake(t, hang(line(t, 1, 1), line(t, 2, 2)))
	_, base := startRelay(t, up, "", nil)
	opts := &websocket.DialOptions{Subprotocols: []string{wire.SubprotocolWatchDeflate}}
	c, _, err := websocket.Dial(t.Context(), "ws"+strings.TrimPrefix(base, "http")+"/v1/worlds/arena/watch", opts)
	require.NoError(t, err)
	defer c.CloseNow()
	var k *wire.Keyframe
	for k == nil || k.Seq < 2 {
		typ, b, err := c.Read(t.Context())
		require.NoError(t, err)
		require.Equal(t, websocket.MessageBinary, typ)
		js, err := io.ReadAll(flate.NewReader(bytes.NewReader(b)))
		require.NoError(t, err)
		if k == nil {
			k = new(wire.Keyframe)
			require.NoError(t, json.Unmarshal(js, k), "%s", js)
			require.Equal(t, wire.TypeKeyframe, k.Type, "the first frame")
			continue
		}
		var d wire.WatchDelta
		require.NoError(t, json.Unmarshal(js, &d), "%s", js)
		if d.Type == wire.TypeWatchDelta {
			spectator.ApplyDelta(k, &d)
		}
	}
	require.EqualValues(t, 2, k.Seq)
	require.EqualValues(t, 2, k.Entities["e1"].Fields["x"].Value.Int)
}

// A relay's watch leaves the versions out with versions=false, and
// refuses a bad versions= before the upgrade.
func TestRelayWatchWithoutVersions(t *testing.T) {
	up := newFake(t, hang(line(t, 1, 1), line(t, 2, 2)))
	_, base := startRelay(t, up, "", nil)
	c := dial(t, base, "", "?versions=false")
	var k *wire.Keyframe
	for k == nil || k.Seq < 2 {
		_, js, err := c.Read(t.Context())
		require.NoError(t, err)
		require.NotContains(t, string(js), `"version":`)
		if k == nil {
			k = new(wire.Keyframe)
			require.NoError(t, json.Unmarshal(js, k), "%s", js)
			continue
		}
		var d wire.WatchDelta
		require.NoError(t, json.Unmarshal(js, &d), "%s", js)
		if d.Type == wire.TypeWatchDelta {
			spectator.ApplyDelta(k, &d)
		}
	}
	require.EqualValues(t, 2, k.Entities["e1"].Fields["x"].Value.Int)

	code, body := get(t, base+"/v1/worlds/arena/watch?versions=maybe")
	require.Equal(t, http.StatusBadRequest, code, "%s", body)
	require.Contains(t, body, "versions")
}

// An event stream with linger writes what it holds, waits, writes more.
func TestRelayEventsLinger(t *testing.T) {
	up := newFake(t, hang(line(t, 1, 1), line(t, 2, 2)))
	_, base := startRelay(t, up, "", nil)
	require.Equal(t, []uint64{1, 2}, seqs(t, readEventsQ(t, base, "", "&linger=10ms", 1, 2)))
}

// The upstream's answer does not come: the viewer is told so.
func TestRelayOpenGivesUpOnASilentUpstream(t *testing.T) {
	block := make(chan struct{})
	up := newFake(t, func(http.ResponseWriter, *http.Request) { <-block })
	defer close(block)
	_, base := startRelay(t, up, "", func(c *Config) { c.OpenTimeout = 20 * time.Millisecond })
	code, body := get(t, base+"/v1/worlds/arena/events")
	require.Equal(t, http.StatusBadGateway, code, "%s", body)
	require.Contains(t, body, "no answer within")
}

// A closed relay refuses viewers and ends the streams it served.
func TestRelayCloseEndsStreams(t *testing.T) {
	up := newFake(t, hang(line(t, 1, 1)))
	r, base := startRelay(t, up, "", nil)
	c := dial(t, base, "", "")
	_, _, err := c.Read(t.Context())
	require.NoError(t, err)
	r.Close()
	r.Close()
	for err == nil {
		_, _, err = c.Read(t.Context())
	}
	require.Equal(t, websocket.StatusGoingAway, websocket.CloseStatus(err), "%v", err)
	code, body := get(t, base+"/v1/worlds/arena/events")
	require.Equal(t, http.StatusServiceUnavailable, code, "%s", body)
	_, err = r.subscribe("arena", 1)
	require.ErrorIs(t, err, ErrClosed)
}

func TestConfigValidateNamesWhatIsWrong(t *testing.T) {
	for name, mod := range map[string]func(*Config){
		"no upstream":  func(c *Config) { c.Upstream = "" },
		"not http":     func(c *Config) { c.Upstream = "ftp://x" },
		"no host":      func(c *Config) { c.Upstream = "http://" },
		"viewers":      func(c *Config) { c.MaxViewers = 0 },
		"retry after":  func(c *Config) { c.RetryAfter = time.Millisecond },
		"events":       func(c *Config) { c.MaxEvents = 0 },
		"retry":        func(c *Config) { c.RetryMax = c.RetryMin / 2 },
		"timeouts":     func(c *Config) { c.WriteTimeout = 0 },
		"client":       func(c *Config) { c.HTTPClient = nil },
		"pipeline":     func(c *Config) { c.Pipeline.Tick = 0 },
		"pipeline now": func(c *Config) { c.Pipeline.Now = nil },
	} {
		cfg := DefaultConfig()
		cfg.Upstream = "http://127.0.0.1:1"
		require.NoError(t, cfg.Validate())
		mod(&cfg)
		_, err := New(cfg)
		require.Error(t, err, name)
	}
}

func TestDecodeEventReversesWire(t *testing.T) {
	evs := []*fsm.Event{
		{World: "w", Seq: 1, Index: 2, Time: 3, Player: "p", ClientSeq: 4, Priority: fsm.PriorityBulk, Status: fsm.StatusApplied,
			Changes: []fsm.Change{{Entity: "e", Field: "s", Op: fsm.OpAdd, Value: fsm.String("a"), Version: 1}, {Entity: "e", Op: fsm.OpDelete, Version: 1}}},
		{World: "w", Seq: 2, Status: fsm.StatusConflict,
			Changes: []fsm.Change{{Entity: "e", Field: "s", Set: []fsm.Value{fsm.Int(1)}, Version: 1, Exists: true}}},
		{World: "w", Seq: 3, Status: fsm.StatusRejected, Reason: "validator"},
	}
	for _, ev := range evs {
		b, err := json.Marshal(ev)
		require.NoError(t, err)
		got, err := parseLine(b)
		require.NoError(t, err)
		require.Equal(t, ev, got)
	}
	for _, bad := range []string{
		`{"world":"w","seq":1,"priority":"urgent","status":"applied"}`,
		`{"world":"w","seq":1,"status":"applied","changes":[{"entity":"e","op":"smash","version":1}]}`,
	} {
		_, err := parseLine([]byte(bad))
		require.ErrorIs(t, err, wire.ErrMalformed, bad)
	}
}

func TestStatusMapsEveryError(t *testing.T) {
	for _, c := range []struct {
		err    error
		status int
		code   string
	}{
		{&UpstreamError{Status: 403, Code: "forbidden"}, 403, "forbidden"},
		{&UpstreamError{Code: "archive_gap"}, 410, "archive_gap"},
		{&UpstreamError{Code: "weird"}, 502, "unavailable"},
		{fmt.Errorf("x: %w", ErrBadRequest), 400, "malformed"},
		{ErrFull, 503, "overloaded"},
		{ErrGap, 410, "archive_gap"},
		{ErrClosed, 503, "unavailable"},
		{errors.New("dial tcp: refused"), 502, "unavailable"},
	} {
		st, code := status(c.err)
		require.Equal(t, c.status, st, "%v", c.err)
		require.Equal(t, c.code, code, "%v", c.err)
	}
	for code, want := range map[string]bool{"unavailable": true, "not_ready": true, "forbidden": false, "archive_gap": false, "": false} {
		require.Equal(t, want, (&UpstreamError{Code: code, Status: 400}).retryable(), code)
	}
	require.True(t, (&UpstreamError{Status: 502}).retryable())
	for err, code := range map[error]websocket.StatusCode{
		nil: websocket.StatusGoingAway, spectator.ErrRulesChanged: CloseRulesChanged,
		ErrGap: CloseGone, &UpstreamError{Code: "unknown_world"}: CloseGone, errors.New("x"): websocket.StatusInternalError,
	} {
		got, _ := closeStatus(err)
		require.Equal(t, code, got, "%v", err)
	}
}

// A world nobody watched for IdleTimeout is followed no more; its next
// viewer follows it again from seq 1.
func TestRelayStopsFollowingAnIdleWorld(t *testing.T) {
	var mu sync.Mutex
	opened := 0
	up := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		opened++
		mu.Unlock()
		hang(line(t, 1, 1))(w, r)
	})
	r, base := startRelay(t, up, "", func(c *Config) { c.IdleTimeout = 20 * time.Millisecond })
	require.Equal(t, []uint64{1}, seqs(t, readEvents(t, base, "", 1, 1)))
	require.Eventually(t, func() bool { return r.following() == 0 }, 10*time.Second, time.Millisecond)
	require.Eventually(t, func() bool { return !strings.Contains(scrape(t, base), `world="arena"`) }, 10*time.Second, time.Millisecond,
		"the world's series go with its follow")
	c := dial(t, base, "", "")
	watchState(t, c, 1)
	require.Equal(t, 1, r.following())
	mu.Lock()
	require.Equal(t, 2, opened)
	mu.Unlock()
}

// With a TokenSource the relay shows the upstream its current token on
// each request, and waits out a refused one until it is rotated.
func TestFollowTakesARotatedToken(t *testing.T) {
	var mu sync.Mutex
	cur := "t1"
	var seen []string
	up := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		mu.Lock()
		seen = append(seen, auth)
		n := len(seen)
		if n == 2 {
			cur = "t2" // rotated while the upstream refuses the old one
		}
		mu.Unlock()
		switch {
		case auth == "Bearer t1" && n == 1:
			lines(line(t, 1, 1))(w, r)
		case auth == "Bearer t2":
			hang(line(t, 1, 1), line(t, 2, 2))(w, r)
		default:
			refuse(http.StatusUnauthorized, `{"code":"unauthorized","error":"token expired"}`)(w, r)
		}
	})
	_, base := startRelay(t, up, "", func(c *Config) {
		c.TokenSource = func() (string, error) {
			mu.Lock()
			defer mu.Unlock()
			return cur, nil
		}
	})
	require.Equal(t, []uint64{1, 2}, seqs(t, readEvents(t, base, "", 1, 2)))
	mu.Lock()
	require.Equal(t, []string{"Bearer t1", "Bearer t1", "Bearer t2"}, seen)
	mu.Unlock()

	_, base = startRelay(t, up, "", func(c *Config) {
		c.TokenSource = func() (string, error) { return "", errors.New("no token file") }
	})
	code, body := get(t, base+"/v1/worlds/arena/events")
	require.Equal(t, http.StatusUnauthorized, code, "%s", body)
	require.Contains(t, body, "no token file")
}

// Viewers of a world the relay does not follow yet wait for one request
// to the upstream, and the relay forgets the worlds nobody opens.
func TestRelayOpensAWorldOnceForManyViewers(t *testing.T) {
	var mu sync.Mutex
	opened := 0
	up := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		opened++
		mu.Unlock()
		hang(line(t, 1, 1))(w, r)
	})
	r, base := startRelay(t, up, "", nil)
	var wg sync.WaitGroup
	for range 5 {
		wg.Go(func() { readEvents(t, base, "", 1, 1) })
	}
	wg.Wait()
	mu.Lock()
	require.Equal(t, 1, opened)
	mu.Unlock()
	r.mu.Lock()
	require.Empty(t, r.opening)
	r.mu.Unlock()
}
