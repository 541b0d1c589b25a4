package client

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// recorded is one request a fake node saw.
type recorded struct {
	Method string
	Path   string
	Query  string
	Body   string
}

// fakeNode is an httptest server that records requests and answers them
// with a handler.
type fakeNode struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []recorded
}

func newFakeNode(t *testing.T, h func(w http.ResponseWriter, r *http.Request, n int)) *fakeNode {
	t.Helper()
	f := &fakeNode{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.reqs = append(f.reqs, recorded{r.Method, r.URL.EscapedPath(), r.URL.RawQuery, string(b)})
		n := len(f.reqs)
		f.mu.Unlock()
		h(w, r, n)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeNode) requests() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.reqs...)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]string{"code": code, "error": msg})
}

// deadAddr returns a loopback address nothing listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// newTestClient returns a client with fast retries that is closed after the test.
func newTestClient(t *testing.T, addrs []string, opts ...Option) *Client {
	t.Helper()
	c := New(addrs, append([]Option{WithBackoff(time.Millisecond, 5*time.Millisecond)}, opts...)...)
	t.Cleanup(c.Close)
	return c
}

// forEachEncoding runs test once per play encoding.
func forEachEncoding(t *testing.T, test func(*testing.T, string)) {
	for _, enc := range []string{EncodingJSON, EncodingMsgpack} {
		t.Run(enc, func(t *testing.T) { test(t, enc) })
	}
}
