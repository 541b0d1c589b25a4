package loadgen

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// memSample is the memory of the target's nodes at one moment: the RSS of
// the processes this run started (0 when it drives an existing cluster)
// and the Go heap in use the nodes report on /metrics.
type memSample struct {
	rssKB     int64
	heapBytes float64
}

// memory samples the nodes at addrs.
func (t *Target) memory(ctx context.Context, addrs []string) memSample {
	var s memSample
	for _, p := range t.Procs {
		if pid := p.PID(); pid > 0 {
			if _, rss, err := readProc(pid); err == nil {
				s.rssKB += rss
			}
		}
	}
	hc := &http.Client{Timeout: 5 * time.Second}
	for _, a := range addrs {
		if v, ok := scrapeMetric(ctx, hc, a, "go_memstats_heap_inuse_bytes"); ok {
			s.heapBytes += v
		}
	}
	return s
}

// scanMetrics reads a node's /metrics, giving each line to line until it
// says done or fails.
func scanMetrics(ctx context.Context, hc *http.Client, addr string, line func(string) (done bool, err error)) error {
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, addr+"/metrics", nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("metrics of %s: %s", addr, resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if done, err := line(sc.Text()); done || err != nil {
			return err
		}
	}
	return sc.Err()
}

// scrapeMetric reads one unlabelled sample from a node's /metrics.
func scrapeMetric(ctx context.Context, hc *http.Client, addr, name string) (float64, bool) {
	var (
		f     float64
		found bool
	)
	err := scanMetrics(ctx, hc, addr, func(l string) (bool, error) {
		v, ok := strings.CutPrefix(l, name+" ")
		if !ok {
			return false, nil
		}
		var err error
		f, err = strconv.ParseFloat(strings.TrimSpace(v), 64)
		found = err == nil
		return true, nil
	})
	return f, found && err == nil
}

// perConn records the memory the connections took: after - before, per
// connection.
func perConn(r *Result, before, after memSample, conns int) {
	if conns <= 0 {
		return
	}
	if after.rssKB > 0 {
		r.Figures["gsd_rss_mb_connected"] = float64(after.rssKB) / 1024
		r.Figures["rss_kb_per_conn"] = float64(after.rssKB-before.rssKB) / float64(conns)
	}
	if after.heapBytes > 0 {
		r.Figures["gsd_heap_mb_connected"] = after.heapBytes / (1 << 20)
		r.Figures["heap_kb_per_conn"] = (after.heapBytes - before.heapBytes) / 1024 / float64(conns)
	}
}
