package loadgen

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestJSONUintReadsTheTopLevelKey(t *testing.T) {
	line := []byte(`{"world":"w\"time\":9","seq":12,"index":3,"time":1700000000123,"changes":[{"time":5}]}` + "\n")
	v, ok := jsonUint(line, `"seq":`)
	require.True(t, ok)
	require.EqualValues(t, 12, v)
	v, ok = jsonUint(line, `"time":`)
	require.True(t, ok)
	require.EqualValues(t, 1700000000123, v)
	_, ok = jsonUint([]byte(`{"code":"unavailable"}`), `"seq":`)
	require.False(t, ok)
	_, ok = jsonUint([]byte(`{"seq":"x"}`), `"seq":`)
	require.False(t, ok)
}

func TestSampleStreamCountsChecksAndRecords(t *testing.T) {
	serve := func(body string) *httptest.Server {
		ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			require.Equal(t, "/v1/worlds/w/events", r.URL.Path)
			require.Equal(t, "100ms", r.URL.Query().Get("linger"))
			_, _ = w.Write([]byte(body))
		}))
		t.Cleanup(ts.Close)
		return ts
	}
	var n atomic.Int64
	var times []int64
	rec := func(t int64) { times = append(times, t) }
	ts := serve(`{"world":"w","seq":4,"index":1,"time":40}` + "\n" + `{"world":"w","seq":5,"index":1,"time":50}` + "\n")
	err := sampleStream(context.Background(), ts.Client(), ts.URL, "w", 100e6, &n, rec)
	require.ErrorContains(t, err, "EOF")
	require.EqualValues(t, 2, n.Load())
	require.Equal(t, []int64{40, 50}, times)

	ts = serve(`{"world":"w","seq":4,"index":1,"time":40}` + "\n" + `{"world":"w","seq":6,"index":1,"time":50}` + "\n")
	require.ErrorContains(t, sampleStream(context.Background(), ts.Client(), ts.URL, "w", 100e6, &n, rec), "seq 6 after 4")
	ts = serve(`{"code":"unavailable","error":"closing"}` + "\n")
	require.ErrorContains(t, sampleStream(context.Background(), ts.Client(), ts.URL, "w", 100e6, &n, rec), "not an event")
	ts = httptest.NewServer(http.NotFoundHandler())
	defer ts.Close()
	require.ErrorContains(t, sampleStream(context.Background(), ts.Client(), ts.URL, "w", 100e6, &n, rec), "404")
}

func TestSpectatorNodes(t *testing.T) {
	all, followers := []string{"l", "f1", "f2"}, []string{"f1", "f2"}
	require.Equal(t, all, SpectatorParams{}.nodes(all, followers))
	require.Equal(t, followers, SpectatorParams{OnFollowers: true}.nodes(all, followers))
	require.Equal(t, []string{"f1"}, SpectatorParams{OnFollowers: true, Nodes: 1}.nodes(all, followers))
	require.Equal(t, []string{"l", "f1"}, SpectatorParams{Nodes: 2}.nodes(all, followers))
	require.Equal(t, followers, SpectatorParams{OnFollowers: true, Nodes: 5}.nodes(all, followers))
}
