package relay

import (
	"bytes"
	"compress/flate"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
)

// The join ruler (issue 13, influx13): what a relay spends per spectator
// joining a world being played, measured by CPU time and allocations, not
// latency (the machine is shared). Run it by hand:
//
//	go test -run '^$' -bench RelayJoin -benchmem -count 5 ./spectator/relay/
//
// One op is one spectator joining as loadgen's do (deflate, versions=false)
// over a real loopback WebSocket connection, reading its keyframe, and
// leaving; one spectator watches throughout so that the view stays. A
// joiner's frames are the view's keyframe and the deltas since (the
// joinBacklog moves' and those of the first events): the same for all. The
// clients run in this process: cpu-µs/join is the process's (user +
// system) time per join, the clients' dial and read included.

// joinEntities is how many entities the ruler's world has (e0.., x and y).
const joinEntities = 1000

// joinEvent is the NDJSON line of event seq setting x and y of entities
// [from, from+n).
func joinEvent(seq uint64, from, n int) string {
	ev := &fsm.Event{World: "arena", Seq: seq, Index: seq + 10, Time: time.Now().UnixNano(), Player: "p",
		Status: fsm.StatusApplied}
	for i := from; i < from+n; i++ {
		e := fmt.Sprintf("e%d", i%joinEntities)
		ev.Changes = append(ev.Changes,
			fsm.Change{Entity: e, Field: "x", Op: fsm.OpSet, Value: fsm.Float(float64(seq) + 0.5), Version: seq},
			fsm.Change{Entity: e, Field: "y", Op: fsm.OpSet, Value: fsm.Float(-float64(seq)), Version: seq})
	}
	b, _ := json.Marshal(ev) // an fsm.Event marshals
	return string(b) + "\n"
}

// joinBacklog is how many deltas a joiner gets after its keyframe: the
// mean of a view with the default KeyframeInterval and Tick (5 s, 100 ms).
const joinBacklog = 25

// joinUpstream answers an event stream that makes joinEntities entities,
// then moves 10 of them joinBacklog times, 30 ms apart (the ruler's relay
// ticks every 10 ms: a delta each), then holds the stream until the relay
// goes: every joiner's frames are the same.
func joinUpstream(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/x-ndjson")
	seq := uint64(1)
	for i := 0; i < joinEntities; i += 100 {
		_, _ = io.WriteString(w, joinEvent(seq, i, 100))
		seq++
	}
	w.(http.Flusher).Flush()
	t := time.NewTicker(30 * time.Millisecond)
	defer t.Stop()
	for range joinBacklog {
		select {
		case <-r.Context().Done():
			return
		case <-t.C:
		}
		_, _ = io.WriteString(w, joinEvent(seq, int(seq*10), 10))
		w.(http.Flusher).Flush()
		seq++
	}
	<-r.Context().Done()
}

// joinOne joins as a spectator, reads its keyframe and returns the open
// connection.
func joinOne(tb testing.TB, wsURL string) *websocket.Conn {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{Subprotocols: []string{wire.SubprotocolWatchDeflate, wire.SubprotocolJSON}})
	if err != nil {
		tb.Fatal(err)
	}
	c.SetReadLimit(-1)
	typ, b, err := c.Read(ctx)
	if err != nil || typ != websocket.MessageBinary || len(b) == 0 {
		tb.Fatalf("first frame: %v (%d bytes, type %v)", err, len(b), typ)
	}
	return c
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkRelayJoin: one op is one spectator's join (see above).
func BenchmarkRelayJoin(b *testing.B) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/views") {
			http.NotFound(w, r) // no views
			return
		}
		joinUpstream(w, r)
	}))
	defer up.Close()
	cfg := DefaultConfig()
	cfg.Upstream = up.URL
	cfg.MaxViewers = 1 << 20
	cfg.Pipeline.Tick = 10 * time.Millisecond
	cfg.Pipeline.KeyframeInterval = time.Hour // the join keyframe stays
	r, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(r.Handler())
	defer func() {
		r.Close()
		srv.CloseClientConnections()
		srv.Close()
		up.CloseClientConnections()
	}()
	wsURL := "ws" + strings.TrimPrefix(srv.URL, "http") + "/v1/worlds/arena/watch?versions=false"
	anchor := joinOne(b, wsURL)
	defer anchor.CloseNow()
	backlog := make(chan struct{})
	last := uint64(joinEntities/100 + joinBacklog) // the upstream's last seq
	go func() {                                    // the anchor reads on: a viewer that keeps up
		for {
			_, b, err := anchor.Read(context.Background())
			if err != nil {
				return
			}
			var f struct{ Seq uint64 }
			if json.NewDecoder(flate.NewReader(bytes.NewReader(b))).Decode(&f) == nil && f.Seq == last {
				close(backlog)
			}
		}
	}()
	<-backlog // a joiner gets the keyframe and every delta since
	b.ReportAllocs()
	b.ResetTimer()
	cpu := processCPU()
	for range b.N {
		joinOne(b, wsURL).CloseNow()
	}
	b.StopTimer()
	b.ReportMetric(float64((processCPU()-cpu).Nanoseconds())/1e3/float64(b.N), "cpu-µs/join")
}
