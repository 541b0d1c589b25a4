package relay

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"
	"github.com/gsd-dev/gsd/api"
	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/internal/testnode"
	"github.com/gsd-dev/gsd/spectator"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// key signs the test node's tokens.
var key = []byte(strings.Repeat("r", 32))

// token returns a token for subject with role ("" a player's, "admin"
// an admin's).
func token(t testing.TB, subject, role string) string {
	t.Helper()
	c := edge.AdminClaims{RegisteredClaims: jwt.RegisteredClaims{Subject: subject,
		ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))}}
	if role == "admin" {
		c.Admin = true
	} else {
		c.Role = role
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(key)
	require.NoError(t, err)
	return s
}

// node is a real one-node gsd with auth on and a world "arena": score is
// seen by all, secret by nobody but the "ref" class.
type node struct {
	url   string
	admin string
	seq   uint64
}

func startNode(t *testing.T) *node {
	t.Helper()
	addr := testnode.StartWith(t, func(c *api.Config) { c.Auth = &edge.AuthConfig{HS256Key: key} })
	n := &node{url: "http://" + addr, admin: token(t, "ops", "admin")}
	n.do(t, http.MethodPost, "/v1/worlds", `{"id":"arena","rules":{"fields":{
		"score":{"type":"int","policy":"counter"},
		"secret":{"type":"string","policy":"authoritative","visible":"hidden"}},
		"viewers":{"ref":{"sees":["hidden"]}}}}`, http.StatusCreated)
	return n
}

// do sends an admin's request and requires want.
func (n *node) do(t *testing.T, method, path, body string, want int) []byte {
	t.Helper()
	req, err := http.NewRequest(method, n.url+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+n.admin)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, want, resp.StatusCode, "%s %s: %s", method, path, b)
	return b
}

// act commits one action on entity e: score += by and, when secret is
// not empty, secret set to it; by 0 touches the secret only. It returns
// the event's seq.
func (n *node) act(t *testing.T, e string, by int64, secret string) uint64 {
	t.Helper()
	n.seq++
	var ops []string
	if by != 0 {
		ops = append(ops, fmt.Sprintf(`{"op":"incr","entity":%q,"field":"score","by":%d}`, e, by))
	}
	if secret != "" {
		ops = append(ops, fmt.Sprintf(`{"op":"set","entity":%q,"field":"secret","value":%q}`, e, secret))
	}
	b := n.do(t, http.MethodPost, "/v1/worlds/arena/actions", fmt.Sprintf(`{"seq":%d,"ops":[%s]}`, n.seq, strings.Join(ops, ",")), http.StatusOK)
	var ev wire.Event
	require.NoError(t, json.Unmarshal(b, &ev))
	require.Equal(t, wire.StatusApplied, ev.Status, "%s", b)
	return ev.Seq
}

// startRelay runs a relay of upstream with cfg adjusted by opt, serving
// on loopback until the test ends; it returns the relay and its URL.
func startRelay(t *testing.T, upstream, tok string, opt func(*Config)) (*Relay, string) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Upstream, cfg.Token = upstream, tok
	cfg.RetryMin, cfg.RetryMax = 10*time.Millisecond, 50*time.Millisecond
	cfg.Pipeline.Tick = 10 * time.Millisecond
	if opt != nil {
		opt(&cfg)
	}
	r, err := New(cfg)
	require.NoError(t, err)
	ts := httptest.NewServer(r.Handler())
	t.Cleanup(func() {
		r.Close()
		ts.CloseClientConnections()
		ts.Close()
	})
	return r, ts.URL
}

// readEvents reads base's event stream of arena from seq from with tok
// until an event of seq until or later, and returns its bytes.
func readEvents(t *testing.T, base, tok string, from, until uint64) []byte {
	t.Helper()
	return readEventsQ(t, base, tok, "", from, until)
}

// readEventsQ is readEvents with more query parameters (&k=v...).
func readEventsQ(t *testing.T, base, tok, query string, from, until uint64) []byte {
	t.Helper()
	return readEventsWorldQ(t, base, tok, "arena", query, from, until)
}

// readEventsWorld is readEvents of another world.
func readEventsWorld(t *testing.T, base, tok, world string, from, until uint64) []byte {
	t.Helper()
	return readEventsWorldQ(t, base, tok, world, "", from, until)
}

func readEventsWorldQ(t *testing.T, base, tok, world, query string, from, until uint64) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/v1/worlds/%s/events?from=%d%s", base, world, from, query), nil)
	require.NoError(t, err)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	rd := bufio.NewReader(resp.Body)
	var out bytes.Buffer
	for {
		line, err := rd.ReadBytes('\n')
		require.NoError(t, err, "after %s", out.Bytes())
		out.Write(line)
		var ev wire.Event
		require.NoError(t, json.Unmarshal(line, &ev))
		require.NotZero(t, ev.Seq, "%s", line)
		if ev.Seq >= until {
			return out.Bytes()
		}
	}
}

// seqs returns the seqs of an event stream's lines.
func seqs(t *testing.T, b []byte) []uint64 {
	t.Helper()
	var out []uint64
	for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		var ev wire.Event
		require.NoError(t, json.Unmarshal(line, &ev))
		out = append(out, ev.Seq)
	}
	return out
}

// dial opens a watch of arena on base with query, as tok.
func dial(t *testing.T, base, tok, query string) *websocket.Conn {
	t.Helper()
	return dialWorld(t, base, tok, "arena", query)
}

// dialWorld is dial of another world.
func dialWorld(t *testing.T, base, tok, world, query string) *websocket.Conn {
	t.Helper()
	opts := &websocket.DialOptions{HTTPHeader: http.Header{}}
	if tok != "" {
		opts.HTTPHeader.Set("Authorization", "Bearer "+tok)
	}
	c, _, err := websocket.Dial(context.Background(), "ws"+strings.TrimPrefix(base, "http")+"/v1/worlds/"+world+"/watch"+query, opts)
	require.NoError(t, err)
	t.Cleanup(func() { c.CloseNow() })
	return c
}

// watchState reads c's frames until the state they build reflects seq
// until or later, and returns that state.
func watchState(t *testing.T, c *websocket.Conn, until uint64) *wire.Keyframe {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var k *wire.Keyframe
	for k == nil || k.Seq < until {
		_, b, err := c.Read(ctx)
		require.NoError(t, err)
		var typ struct{ Type string }
		require.NoError(t, json.Unmarshal(b, &typ))
		switch typ.Type {
		case wire.TypeKeyframe:
			k = new(wire.Keyframe)
			require.NoError(t, json.Unmarshal(b, k))
		case wire.TypeWatchDelta:
			require.NotNil(t, k, "a delta before the keyframe")
			var d wire.WatchDelta
			require.NoError(t, json.Unmarshal(b, &d))
			spectator.ApplyDelta(k, &d)
		}
	}
	return k
}

// watchEvents reads c's frames (mode=events) until an events frame
// reaches seq until, and returns the events after the keyframe with a
// seq above after.
func watchEvents(t *testing.T, c *websocket.Conn, after, until uint64) []wire.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out []wire.Event
	for {
		_, b, err := c.Read(ctx)
		require.NoError(t, err)
		var f wire.Events
		require.NoError(t, json.Unmarshal(b, &f))
		if f.Type != wire.TypeEvents {
			continue
		}
		for _, ev := range f.Events {
			if ev.Seq > after {
				out = append(out, ev)
			}
		}
		if f.Seq >= until {
			return out
		}
	}
}

// cutter proxies to a node and can drop every stream it carries; it
// records the answers to event stream requests.
type cutter struct {
	mu      sync.Mutex
	cancels map[*http.Request]context.CancelFunc
	cuts    int
	answers []*answer
}

// answer is an event stream's request as the cutter carried it: its
// query, the answer's header and the body's bytes as sent.
type answer struct {
	query  url.Values
	header http.Header
	mu     sync.Mutex
	body   bytes.Buffer
}

// sent returns the answer's body bytes so far.
func (a *answer) sent() []byte {
	a.mu.Lock()
	defer a.mu.Unlock()
	return bytes.Clone(a.body.Bytes())
}

// recorded returns the event stream answers carried so far.
func (c *cutter) recorded() []*answer {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*answer(nil), c.answers...)
}

// teeBody copies what is read from a body into an answer.
type teeBody struct {
	io.ReadCloser
	a *answer
}

func (b teeBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.a.mu.Lock()
	b.a.body.Write(p[:n])
	b.a.mu.Unlock()
	return n, err
}

func newCutter(t *testing.T, upstream string) (*cutter, string) {
	t.Helper()
	u, err := url.Parse(upstream)
	require.NoError(t, err)
	p := httputil.NewSingleHostReverseProxy(u)
	p.FlushInterval = -1
	c := &cutter{cancels: make(map[*http.Request]context.CancelFunc)}
	p.ModifyResponse = func(resp *http.Response) error {
		if !strings.HasSuffix(resp.Request.URL.Path, "/events") {
			return nil
		}
		a := &answer{query: resp.Request.URL.Query(), header: resp.Header.Clone()}
		c.mu.Lock()
		c.answers = append(c.answers, a)
		c.mu.Unlock()
		resp.Body = teeBody{resp.Body, a}
		return nil
	}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithCancel(r.Context())
		c.mu.Lock()
		c.cancels[r] = cancel
		c.mu.Unlock()
		defer func() {
			c.mu.Lock()
			delete(c.cancels, r)
			c.mu.Unlock()
			cancel()
		}()
		p.ServeHTTP(w, r.WithContext(ctx))
		if ctx.Err() != nil && r.Context().Err() == nil {
			panic(http.ErrAbortHandler) // drop the connection, mid-stream
		}
	}))
	t.Cleanup(func() {
		ts.CloseClientConnections()
		ts.Close()
	})
	return c, ts.URL
}

// cut drops the streams open now and returns how many.
func (c *cutter) cut() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, cancel := range c.cancels {
		cancel()
	}
	c.cuts += len(c.cancels)
	return len(c.cancels)
}
