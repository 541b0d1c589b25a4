package api

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/store"
	"github.com/prometheus/client_golang/prometheus"
)

// BenchmarkEventStreamSpectators serves 500 NDJSON streams of one world
// (linger 20 ms) on a one-node store over loopback, commits b.N actions in
// batches of 16 and waits until every stream has received every event. It
// reports the process's CPU time (user + system, server and the raw
// line-counting readers together) per delivered event, and per committed
// action with no stream open for comparison. It uses only the HTTP
// surface, so the same file measures other versions of the stream code.
func BenchmarkEventStreamSpectators(b *testing.B) {
	for _, streams := range []int{0, 500} {
		b.Run(fmt.Sprintf("streams=%d", streams), func(b *testing.B) { benchSpectators(b, streams) })
	}
}

func benchSpectators(b *testing.B, streams int) {
	cfg := store.DefaultConfig()
	cfg.ID, cfg.Dir, cfg.Bootstrap, cfg.NoSync = "n1", b.TempDir(), true, true
	cfg.RaftAddr = "127.0.0.1:0"
	cfg.Logger = quietLogger()
	ln := httptest.NewUnstartedServer(nil)
	cfg.HTTPAddr = ln.Listener.Addr().String()
	st, err := store.New(cfg, prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close(context.Background())
	for !st.IsLeader() {
		time.Sleep(5 * time.Millisecond)
	}
	s, err := New(testConfig(), st, edge.NewSingleGroupRouter(st), prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	ln.Config.Handler = s.Handler()
	ln.Start()
	defer ln.Close()
	defer s.Close()
	post := func(path, body string) {
		resp, err := http.Post(ln.URL+path, "application/json", strings.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode >= 300 {
			b.Fatalf("%s: %s", path, resp.Status)
		}
	}
	post("/v1/worlds", `{"id":"arena"}`)

	var got atomic.Int64
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); wg.Wait() }()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: streams + 1, MaxConnsPerHost: 0}}
	for range streams {
		req, _ := http.NewRequestWithContext(ctx, "GET", ln.URL+"/v1/worlds/arena/events?linger=20ms", nil)
		resp, err := hc.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer resp.Body.Close()
			buf := make([]byte, 32<<10)
			for {
				k, err := resp.Body.Read(buf)
				got.Add(int64(bytes.Count(buf[:k], []byte{'\n'})))
				if err != nil {
					return
				}
			}
		}()
	}
	time.Sleep(100 * time.Millisecond) // the streams are open
	batch := func(i int) string {
		var sb strings.Builder
		sb.WriteString(`{"actions":[`)
		for j := range 16 {
			if j > 0 {
				sb.WriteByte(',')
			}
			fmt.Fprintf(&sb, `{"player":"p%d","seq":%d,"ops":[{"op":"incr","entity":"e%d","field":"score","by":1}]}`, j, i+1, j)
		}
		sb.WriteString(`]}`)
		return sb.String()
	}
	batches := max(b.N/16, 1)
	want := int64(batches * 16 * streams)
	cpu0 := cpuTime()
	b.ResetTimer()
	for i := range batches {
		post("/v1/worlds/arena/actions:batch", batch(i))
	}
	for got.Load() < want {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	cpu := cpuTime() - cpu0
	if streams > 0 {
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(want), "cpu-ns/delivered")
	}
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(batches*16), "cpu-ns/action")
}

// cpuTime returns the process's user + system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
