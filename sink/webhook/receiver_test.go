package webhook

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/gsd-dev/gsd/wire"
)

var (
	testKeyID  = "k1"
	testSecret = []byte("0123456789abcdef-test-secret")
)

// receiver is a webhook endpoint that checks every request's signature
// and fails some of them on purpose: fail(n) picks, for the nth request
// (from 1), what goes wrong.
type receiver struct {
	t    *testing.T
	srv  *httptest.Server
	fail func(n int) fault

	mu       sync.Mutex
	requests int
	got      []wire.Event // every event the receiver kept, repeats too
	bad      []string     // what was wrong with a request
	done     chan struct{}
}

// fault is how the receiver answers one request.
type fault int

const (
	faultNone        fault = iota
	fault500               // refuse before keeping the batch
	faultKeepThen500       // keep the batch, then answer 500 (a lost 2xx)
	faultHang              // answer only after the client gave up
)

func newReceiver(t *testing.T, fail func(n int) fault) *receiver {
	r := &receiver{t: t, fail: fail, done: make(chan struct{})}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(func() {
		close(r.done)
		r.srv.Close()
	})
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	r.mu.Lock()
	r.requests++
	n := r.requests
	r.mu.Unlock()
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f := faultNone
	if r.fail != nil {
		f = r.fail(n)
	}
	switch f {
	case fault500:
		http.Error(w, "try later", http.StatusServiceUnavailable)
		return
	case faultHang:
		select {
		case <-req.Context().Done():
		case <-r.done:
		}
		return
	}
	var b Batch
	problem := ""
	switch {
	case req.Header.Get(HeaderKeyID) != testKeyID:
		problem = "key id " + req.Header.Get(HeaderKeyID)
	case !Verify(testSecret, body, req.Header.Get(HeaderSignature)):
		problem = "bad signature"
	case json.Unmarshal(body, &b) != nil:
		problem = "undecodable body"
	case b.Schema != SchemaVersion || len(b.Events) == 0 || b.Events[0].Seq != b.First || b.Events[len(b.Events)-1].Seq != b.Last:
		problem = "bad envelope"
	case req.Header.Get(HeaderBatch) != b.World+"/"+itoa(b.First)+"-"+itoa(b.Last):
		problem = "batch header " + req.Header.Get(HeaderBatch)
	}
	r.mu.Lock()
	if problem != "" {
		r.bad = append(r.bad, problem)
	} else {
		r.got = append(r.got, b.Events...)
	}
	r.mu.Unlock()
	if problem != "" {
		http.Error(w, problem, http.StatusBadRequest)
		return
	}
	if f == faultKeepThen500 {
		http.Error(w, "lost answer", http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func itoa(n uint64) string { b, _ := json.Marshal(n); return string(b) }

// world returns world's events the receiver kept, de-duplicated by seq,
// and how many it kept in all (repeats included).
func (r *receiver) world(world string) (dedup map[uint64]wire.Event, all int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	dedup = make(map[uint64]wire.Event)
	for _, ev := range r.got {
		if ev.World == world {
			dedup[ev.Seq] = ev
			all++
		}
	}
	return dedup, all
}

func (r *receiver) problems() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.bad...)
}
