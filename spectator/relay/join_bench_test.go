package relay

import (
	"bufio"
	"bytes"
	"compress/flate"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	rtmetrics "runtime/metrics"
	"strconv"
	"strings"
	"sync"
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

// joinEntities is how many entities the join ruler's world has (e0..,
// x and y).
const joinEntities = 1000

// joinWorld is a join ruler's world: its entities, made 100 an event,
// then joinBacklog moves of 10 of them; their values alike for all
// (they deflate to little) or, spread, as a game's positions are
// (loadgen's: 0 to 999, and hp 0 to 99).
type joinWorld struct {
	entities int
	spread   bool
}

var (
	// joinRulerWorld is BenchmarkRelayJoin's world.
	joinRulerWorld = joinWorld{entities: joinEntities}
	// influxWorld is BenchmarkRelayInflux's: a join keyframe of 106 kB
	// deflated (versions=false), 116 kB with the deltas since.
	influxWorld = joinWorld{entities: 8000, spread: true}
)

// made is the seq of the event that made the last entities; last is the
// last move's.
func (jw joinWorld) made() uint64 { return uint64(jw.entities / 100) }
func (jw joinWorld) last() uint64 { return jw.made() + joinBacklog }

// event is the NDJSON line of event seq setting the fields of entities
// [from, from+n).
func (jw joinWorld) event(seq uint64, from, n int) string {
	ev := &fsm.Event{World: "arena", Seq: seq, Index: seq + 10, Time: time.Now().UnixNano(), Player: "p",
		Status: fsm.StatusApplied}
	for i := from; i < from+n; i++ {
		e := fmt.Sprintf("e%d", i%jw.entities)
		x, y := fsm.Float(float64(seq)+0.5), fsm.Float(-float64(seq))
		if jw.spread {
			h := uint64(i)*2654435761 + seq*40503 // the same for every run
			x, y = fsm.Int(int64(h%1000)), fsm.Int(int64(h/1000%1000))
			ev.Changes = append(ev.Changes, fsm.Change{Entity: e, Field: "hp", Op: fsm.OpSet, Value: fsm.Int(int64(h / 1e6 % 100)), Version: seq})
		}
		ev.Changes = append(ev.Changes,
			fsm.Change{Entity: e, Field: "x", Op: fsm.OpSet, Value: x, Version: seq},
			fsm.Change{Entity: e, Field: "y", Op: fsm.OpSet, Value: y, Version: seq})
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
func joinUpstream(w http.ResponseWriter, r *http.Request) { joinRulerWorld.stream(w, r, nil) }

// stream is joinUpstream's stream of jw; the moves wait for moves to
// close (nil: they do not).
func (jw joinWorld) stream(w http.ResponseWriter, r *http.Request, moves <-chan struct{}) {
	w.Header().Set("Content-Type", "application/x-ndjson")
	seq := uint64(1)
	for i := 0; i < jw.entities; i += 100 {
		_, _ = io.WriteString(w, jw.event(seq, i, 100))
		seq++
	}
	w.(http.Flusher).Flush()
	if moves != nil {
		select {
		case <-r.Context().Done():
			return
		case <-moves:
		}
	}
	t := time.NewTicker(30 * time.Millisecond)
	defer t.Stop()
	for range joinBacklog {
		select {
		case <-r.Context().Done():
			return
		case <-t.C:
		}
		_, _ = io.WriteString(w, jw.event(seq, int(seq*10), 10))
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
	c, err := dialJoin(ctx, wsURL, n, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// dialJoin is joinOne for goroutines other than the test's, dialling
// with hc (nil: the default client).
func dialJoin(ctx context.Context, wsURL string, n int, hc *http.Client) (*websocket.Conn, error) {
	c, _, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{HTTPClient: hc,
		Subprotocols: []string{wire.SubprotocolWatchDeflate, wire.SubprotocolJSON}})
	if err != nil {
		return nil, err
	}
	c.SetReadLimit(-1)
	for range n {
		typ, b, err := c.Read(ctx)
		if err != nil || typ != websocket.MessageBinary || len(b) == 0 {
			c.CloseNow()
			return nil, fmt.Errorf("frame: %v (%d bytes, type %v)", err, len(b), typ)
		}
	}
	return c, nil
}

// frameSeq returns the seq of a deflated frame (0 if it says none).
func frameSeq(b []byte) uint64 {
	var f struct{ Seq uint64 }
	_ = json.NewDecoder(flate.NewReader(bytes.NewReader(b))).Decode(&f)
	return f.Seq
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// startJoinRelay runs the join rulers' relay of joinStream's world,
// with one spectator watching throughout (the anchor: the view stays),
// until tb ends; it returns the watch URL and how many frames a joiner
// gets: the join keyframe and every delta since, the anchor's count up
// to the upstream's last event. The influx ruler's world (influx) has
// spread values, and its join keyframe holds most of the world's
// entities: the relay holds two events (MaxEvents) and follows the
// world before anyone watches, so that the anchor's pipeline starts from
// the state after the others; the upstream's moves wait for the anchor.
func startJoinRelay(tb testing.TB, influx bool) (string, int) { return startJoinRelayOn(tb, influx, 0) }

// startJoinRelayOn is startJoinRelay whose relay's sockets have sndbuf
// bytes of send buffer (0: the system's).
func startJoinRelayOn(tb testing.TB, influx bool, sndbuf int) (string, int) {
	jw, moves := joinRulerWorld, chan struct{}(nil)
	if influx {
		jw, moves = influxWorld, make(chan struct{})
	}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/views") {
			http.NotFound(w, r) // no views
			return
		}
		jw.stream(w, r, moves)
	}))
	cfg := DefaultConfig()
	cfg.Upstream = up.URL
	cfg.MaxViewers = 1 << 20
	cfg.Pipeline.Tick = 10 * time.Millisecond
	cfg.Pipeline.KeyframeInterval = time.Hour // the join keyframe stays
	if influx {
		cfg.MaxEvents = 2
	}
	r, err := New(cfg)
	if err != nil {
		up.Close()
		tb.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(r.Handler())
	srv.Listener = sndbufListener{srv.Listener, sndbuf}
	srv.Start()
	tb.Cleanup(func() {
		r.Close()
		srv.CloseClientConnections()
		srv.Close()
		up.CloseClientConnections()
		up.Close()
	})
	wsURL := "ws" + strings.TrimPrefix(srv.URL, "http") + "/v1/worlds/arena/watch?versions=false"
	if influx {
		followed(tb, r, jw.made())
	}
	anchor := joinOne(tb, wsURL, 1)
	if influx {
		close(moves)
	}
	tb.Cleanup(func() { anchor.CloseNow() })
	frames := make(chan int, 1) // how many the anchor read up to the last event
	last := jw.last()           // the upstream's last seq
	go func() {                 // the anchor reads on: a viewer that keeps up
		for n := 2; ; n++ {
			_, b, err := anchor.Read(context.Background())
			if err != nil {
				return
			}
			if frameSeq(b) == last {
				frames <- n
			}
		}
	}()
	// A joiner gets the same frames: the join keyframe and every delta
	// since; it reads them all, as a spectator who stays does.
	return wsURL, <-frames
}

// sndbufListener sets its connections' send buffers to n bytes (0: it
// does not).
type sndbufListener struct {
	net.Listener
	n int
}

func (l sndbufListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok && l.n > 0 {
		err = tc.SetWriteBuffer(l.n)
	}
	return c, err
}

// followed makes r follow arena and waits until it holds seq.
func followed(tb testing.TB, r *Relay, seq uint64) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	f, err := r.followOf(ctx, "arena")
	if err != nil {
		tb.Fatal(err)
	}
	poll := time.NewTicker(time.Millisecond)
	defer poll.Stop()
	for f.position() <= seq {
		select {
		case <-ctx.Done():
			tb.Fatalf("the relay does not hold seq %d: %v", seq, ctx.Err())
		case <-poll.C:
		}
	}
}

// BenchmarkRelayJoin: one op is one spectator's join (see above).
func BenchmarkRelayJoin(b *testing.B) {
	wsURL, n := startJoinRelay(b, false)
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
	wsURL, n := childSpec(t, joinChildEnv, 2)
	for range n[0] {
		joinOne(t, wsURL, n[1]).CloseNow()
	}
}

// childSpec reads a ruler's client process's spec from env: the watch URL
// and counts more numbers, comma-separated; without it the test skips
// (the ruler's benchmark sets it).
func childSpec(t *testing.T, env string, counts int) (string, []int) {
	spec := os.Getenv(env)
	if spec == "" {
		t.Skipf("a ruler's client process (its benchmark sets %s)", env)
	}
	parts := strings.Split(spec, ",")
	if len(parts) != 1+counts {
		t.Fatalf("%s=%q: want the watch URL and %d numbers", env, spec, counts)
	}
	n := make([]int, counts)
	for i, p := range parts[1:] {
		v, err := strconv.Atoi(p)
		if err != nil {
			t.Fatalf("%s=%q: %v", env, spec, err)
		}
		n[i] = v
	}
	return parts[0], n
}

// The influx ruler (issue 13, relay13): the memory a relay holds while
// many spectators join at once, the join ruler's world and frames
// (join_bench_test.go), measured by the heap, not by latency. Run it by
// hand, one influx per process (the peak RSS is the process's):
//
//	go test -run '^$' -bench RelayInflux -benchtime 1x -count 1 ./spectator/relay/
//
// One op is GSD_RELAY_INFLUX_N spectators (default 1,000) joining at once
// from a child process: each dials, reads its keyframe and the deltas
// since, and stays until every one has (GSD_RELAY_INFLUX_SLOW=1: none
// reads before all have dialled, so the relay's writes to them wait on
// full sockets, as for viewers on slow links: their sockets have 16 KiB
// receive buffers and the relay's 32 KiB send buffers, where on loopback
// the kernel would take a whole join). The figures are the
// relay's process: peak-heap-MB, the largest heap (live and not yet
// swept objects) sampled every millisecond during the op; heap-KB/join,
// that peak over the heap before the op, per joiner; peak-rss-MB, the
// process's peak resident set so far (VmHWM).

// influxChildEnv names the influx ruler's client process's relay, its
// joiners, the frames each reads and whether they read late
// (wsURL,joiners,frames,slow: 1 or 0).
const influxChildEnv = "GSD_RELAY_INFLUX_CHILD"

// BenchmarkRelayInflux: one op is an influx of joiners (see above).
func BenchmarkRelayInflux(b *testing.B) {
	joiners := 1000
	if s := os.Getenv("GSD_RELAY_INFLUX_N"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			b.Fatalf("GSD_RELAY_INFLUX_N=%q: want a count", s)
		}
		joiners = n
	}
	slow := os.Getenv("GSD_RELAY_INFLUX_SLOW") == "1"
	sndbuf, late := 0, 0
	if slow {
		sndbuf, late = 32<<10, 1
	}
	wsURL, frames := startJoinRelayOn(b, true, sndbuf)
	b.ReportAllocs()
	var peak, grew uint64
	for range b.N {
		b.StopTimer()
		runtime.GC()
		base := heapObjects()
		b.StartTimer()
		stop := make(chan struct{})
		top := make(chan uint64)
		go func() { // the sampler
			hi := base
			t := time.NewTicker(time.Millisecond)
			defer t.Stop()
			for {
				hi = max(hi, heapObjects())
				select {
				case <-stop:
					top <- hi
					return
				case <-t.C:
				}
			}
		}()
		cmd := exec.Command(os.Args[0], "-test.run=^TestRelayInfluxClientProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s,%d,%d,%d", influxChildEnv, wsURL, joiners, frames, late))
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		close(stop)
		hi := <-top
		if err != nil || !strings.Contains(string(out), "PASS") {
			b.Fatalf("the client process: %v: %s", err, out)
		}
		peak = max(peak, hi)
		grew = max(grew, hi-base)
	}
	b.StopTimer()
	b.ReportMetric(float64(peak)/1e6, "peak-heap-MB")
	b.ReportMetric(float64(grew)/1e3/float64(joiners), "heap-KB/join")
	b.ReportMetric(float64(peakRSS())/1e6, "peak-rss-MB")
}

// heapObjects returns the bytes of the heap's objects, live and not yet
// swept.
func heapObjects() uint64 {
	s := []rtmetrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	rtmetrics.Read(s)
	return s[0].Value.Uint64()
}

// peakRSS returns the process's peak resident set (VmHWM), 0 where
// /proc does not say.
func peakRSS() uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// TestRelayInfluxClientProcess is the influx ruler's client process
// (BenchmarkRelayInflux starts it): its joiners dial at once, each reads
// its frames (the slow ones once all have dialled), and all leave when
// every one has read them.
func TestRelayInfluxClientProcess(t *testing.T) {
	wsURL, n := childSpec(t, influxChildEnv, 3)
	joiners, frames, slow := n[0], n[1], n[2] == 1
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var dialled, done sync.WaitGroup
	dialled.Add(joiners)
	errs := make(chan error, joiners)
	conns := make([]*websocket.Conn, joiners)
	for i := range joiners {
		done.Go(func() {
			c, err := influxJoin(ctx, wsURL, frames, slow, &dialled)
			conns[i] = c
			if err != nil {
				errs <- err
			}
		})
	}
	done.Wait()
	close(errs)
	for _, c := range conns {
		if c != nil {
			c.CloseNow()
		}
	}
	for err := range errs {
		t.Fatal(err)
	}
}

// slowLink dials with a small receive buffer (16 KiB): a viewer on a
// slow link, whose socket takes little of what the relay writes until
// it reads.
var slowLink = &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{
	Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 16<<10) })
		return errors.Join(err, serr)
	},
}).DialContext}}

// influxJoin is one of the influx's joiners: it dials, marks dialled
// (a slow one then waits for all the others) and reads its frames.
func influxJoin(ctx context.Context, wsURL string, frames int, slow bool, dialled *sync.WaitGroup) (*websocket.Conn, error) {
	if !slow {
		defer dialled.Done()
		return dialJoin(ctx, wsURL, frames, nil)
	}
	c, err := dialJoin(ctx, wsURL, 0, slowLink)
	dialled.Done()
	if err != nil {
		return nil, err
	}
	dialled.Wait()
	for range frames {
		if _, _, err := c.Read(ctx); err != nil {
			return c, err
		}
	}
	return c, nil
}
