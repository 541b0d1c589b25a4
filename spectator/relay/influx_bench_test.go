package relay

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
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
)

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
