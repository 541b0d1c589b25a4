package loadgen

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestHist(t *testing.T) {
	h := NewHist()
	require.Equal(t, Summary{}, h.Summary())
	for i := 1; i <= 100; i++ {
		h.Record(time.Duration(i) * time.Millisecond)
	}
	h.Record(0)              // clamped up to 1µs
	h.Record(10 * time.Hour) // clamped down to the top
	o := NewHist()
	o.Record(time.Millisecond)
	h.Merge(o)
	s := h.Summary()
	require.EqualValues(t, 103, s.Count)
	require.InDelta(t, 50, s.P50, 1)
	require.Len(t, s.Points, len(PlotPercentiles))
	require.EqualValues(t, 103, h.Count())
}

func TestByteCounter(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = w.Write([]byte("hello"))
	}))
	defer srv.Close()
	var b ByteCounter
	hc := b.HTTPClient(2)
	defer hc.CloseIdleConnections()
	resp, err := hc.Post(srv.URL, "text/plain", strings.NewReader("12345"))
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, "hello", string(body))
	require.Greater(t, b.Sent.Load(), int64(5))
	require.Greater(t, b.Received.Load(), int64(5))
	require.Equal(t, b.Sent.Load()+b.Received.Load(), b.Total())
	_, err = hc.Get("http://127.0.0.1:1/")
	require.Error(t, err)
}

func TestProcSampler(t *testing.T) {
	cpu, rss, err := readProc(os.Getpid())
	require.NoError(t, err)
	require.Positive(t, rss)
	require.GreaterOrEqual(t, cpu, time.Duration(0))
	_, _, err = readProc(1 << 30)
	require.Error(t, err)
	s := NewProcSampler([]Proc{Self(), {Name: "none", PID: func() int { return 0 }}, {Name: "gone", PID: func() int { return 1 << 30 }}}, 10*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 80*time.Millisecond)
	defer cancel()
	go s.Run(ctx)
	for end := time.Now().Add(50 * time.Millisecond); time.Now().Before(end); {
		_ = strings.Repeat("x", 1000) // burn a little CPU
	}
	s.Wait()
	st := s.Stats()
	require.Len(t, st, 3)
	require.Equal(t, "loadgen", st[0].Name)
	require.Greater(t, st[0].Samples, 1)
	require.Positive(t, st[0].PeakRSSMB)
	require.Zero(t, st[1].Samples)
}

func TestPlot(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, WritePercentilePlot(&b, "t <1>", []Series{
		{Name: "a", Points: []Point{{0, 0.5}, {50, 2}, {99, 30}, {100, 1500}}},
		{Name: "empty"},
	}))
	svg := b.String()
	require.True(t, strings.HasPrefix(svg, "<svg"))
	require.Contains(t, svg, "t &lt;1&gt;")
	require.Contains(t, svg, "polyline")
	require.Contains(t, svg, "10s")
	require.Contains(t, svg, "500µs")
	b.Reset()
	require.NoError(t, WritePercentilePlot(&b, "none", nil))
	require.Contains(t, b.String(), "</svg>")
}

func TestDescribeMachineAndParams(t *testing.T) {
	m := DescribeMachine()
	require.Positive(t, m.Cores)
	require.NotEmpty(t, m.GoVersion)
	p := DefaultLoadParams()
	p.RequestTimeout = 0
	require.NoError(t, p.validate())
	require.Positive(t, p.RequestTimeout)
	p.Players = 0
	require.Error(t, p.validate())
	tg := &Target{}
	_, _, err := tg.leaderFirst(context.Background())
	require.Error(t, err)
	tg.logf("nothing %d", 1) // no Log: discarded
	r := &Result{Latency: map[string]Summary{"zz": {}, "aa": {}, "fanout": {}, "action_commit": {}}}
	require.Equal(t, []string{"action_commit", "fanout", "aa", "zz"}, r.LatencyKeys())
}
