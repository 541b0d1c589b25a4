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
	"os"
	"os/exec"
	"strconv"
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
// over a real loopback WebSocket connection, reading its keyframe and the
// deltas since, and leaving; one spectator watches throughout so that the view stays. A
// joiner's frames are the view's keyframe and the deltas since (the
// joinBacklog moves' and those of the first events): the same for all. The
// clients run in this process: cpu-µs/join is the process's (user +
// system) time per join, the clients' dial and read included; with
// GSD_RELAY_JOIN_SPLIT=1 they run in a child process, and the figures
// are the relay's (its upstream's and its one watcher's included).

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

// joinOne joins as a spectator, reads its first n frames (a keyframe
// first) and returns the open connection.
func joinOne(tb testing.TB, wsURL string, n int) *websocket.Conn {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{Subprotocols: []string{wire.SubprotocolWatchDeflate, wire.SubprotocolJSON}})
	if err != nil {
		tb.Fatal(err)
	}
	c.SetReadLimit(-1)
	for range n {
		typ, b, err := c.Read(ctx)
		if err != nil || typ != websocket.MessageBinary || len(b) == 0 {
			tb.Fatalf("frame: %v (%d bytes, type %v)", err, len(b), typ)
		}
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
	anchor := joinOne(b, wsURL, 1)
	defer anchor.CloseNow()
	frames := make(chan int, 1)                    // how many the anchor read up to the last event
	last := uint64(joinEntities/100 + joinBacklog) // the upstream's last seq
	go func() {                                    // the anchor reads on: a viewer that keeps up
		for n := 2; ; n++ {
			_, b, err := anchor.Read(context.Background())
			if err != nil {
				return
			}
			var f struct{ Seq uint64 }
			if json.NewDecoder(flate.NewReader(bytes.NewReader(b))).Decode(&f) == nil && f.Seq == last {
				frames <- n
			}
		}
	}()
	// A joiner gets the same frames: the join keyframe and every delta
	// since; it reads them all, as a spectator who stays does.
	n := <-frames
	split := os.Getenv("GSD_RELAY_JOIN_SPLIT") == "1"
	b.ReportAllocs()
	b.ResetTimer()
	cpu := processCPU()
	if split {
		cmd := exec.Command(os.Args[0], "-test.run=^TestRelayJoinClientProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s,%d,%d", joinChildEnv, wsURL, b.N, n))
		cmd.Stderr = os.Stderr
		if out, err := cmd.Output(); err != nil || !strings.Contains(string(out), "PASS") {
			b.Fatalf("the client process: %v: %s", err, out)
		}
	} else {
		for range b.N {
			joinOne(b, wsURL, n).CloseNow()
		}
	}
	b.StopTimer()
	b.ReportMetric(float64((processCPU()-cpu).Nanoseconds())/1e3/float64(b.N), "cpu-µs/join")
}

// joinChildEnv names the join ruler's client process's relay, joins and
// frames each reads (wsURL,joins,frames).
const joinChildEnv = "GSD_RELAY_JOIN_CHILD"

// TestRelayJoinClientProcess is the join ruler's client process when it
// runs split (GSD_RELAY_JOIN_SPLIT=1: the ruler's CPU and allocations are
// then the relay's alone, its upstream's and one watcher's included): it
// joins n spectators one after another, each reading its keyframe.
func TestRelayJoinClientProcess(t *testing.T) {
	spec := os.Getenv(joinChildEnv)
	if spec == "" {
		t.Skip("the join ruler's client process (GSD_RELAY_JOIN_SPLIT=1 starts it)")
	}
	parts := strings.Split(spec, ",")
	if len(parts) != 3 {
		t.Fatalf("%s=%q: want wsURL,joins,frames", joinChildEnv, spec)
	}
	joins, err1 := strconv.Atoi(parts[1])
	frames, err2 := strconv.Atoi(parts[2])
	if err1 != nil || err2 != nil {
		t.Fatalf("%s=%q: want wsURL,joins,frames", joinChildEnv, spec)
	}
	for range joins {
		joinOne(t, parts[0], frames).CloseNow()
	}
}
