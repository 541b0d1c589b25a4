package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// tamperingProxy forwards to node, rewriting one change's value in the
// event of seq 2 of every event stream it carries (asked uncompressed;
// lean lines too, whose value may end the change); the audit routes pass
// as they are.
func tamperingProxy(t *testing.T, node string) string {
	t.Helper()
	u, err := url.Parse("http://" + node)
	require.NoError(t, err)
	value := regexp.MustCompile(`"value":[0-9]+([,}])`)
	p := &httputil.ReverseProxy{FlushInterval: -1, Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(u)
		q := r.Out.URL.Query()
		q.Del("compress") // uncompressed lines, to rewrite
		r.Out.URL.RawQuery = q.Encode()
		r.Out.Header.Del("Accept-Encoding")
	}}
	p.ModifyResponse = func(resp *http.Response) error {
		if !strings.HasSuffix(resp.Request.URL.Path, "/events") || resp.StatusCode != http.StatusOK {
			return nil
		}
		pr, pw := io.Pipe()
		go func(body io.ReadCloser) {
			defer body.Close()
			rd := bufio.NewReader(body)
			for {
				line, err := rd.ReadString('\n')
				if strings.Contains(line, `"seq":2,`) {
					line = value.ReplaceAllString(line, `"value":77$1`)
				}
				if _, werr := io.WriteString(pw, line); werr != nil || err != nil {
					pw.CloseWithError(err)
					return
				}
			}
		}(resp.Body)
		resp.Body = pr
		resp.Header.Del("Content-Length")
		return nil
	}
	ts := httptest.NewServer(p)
	t.Cleanup(func() {
		ts.CloseClientConnections()
		ts.Close()
	})
	return ts.URL
}

// requireRelayDropsATamperingUpstream runs a verifying relay behind a
// proxy that rewrites one event of node's world arena (of 5): the relay finds its leaves are not the signed tree's
// and drops the upstream, reason leaves.
func requireRelayDropsATamperingUpstream(t *testing.T, ctx context.Context, node, pubKey string) {
	t.Helper()
	proxy := tamperingProxy(t, node)
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	var out, errOut syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(rctx, []string{"--addr", node, "relay", "run", "--upstream", proxy, "--listen", "127.0.0.1:0",
			"--audit-key", pubKey, "--checkpoint-interval", "20ms"}, strings.NewReader(""), &out, &errOut)
	}()
	defer func() {
		stop()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Errorf("gsdctl relay run did not stop: %s", &errOut)
		}
	}()
	listening := regexp.MustCompile(`relay listening on (\S+),`)
	var base string
	require.Eventually(t, func() bool {
		if m := listening.FindStringSubmatch(out.String()); m != nil {
			base = "http://" + m[1]
		}
		return base != ""
	}, 20*time.Second, 5*time.Millisecond, "stdout: %s stderr: %s", &out, &errOut)
	lines := streamLines(t, base, "arena", 2)
	require.Contains(t, lines, `"value":77,`, "the proxy rewrote seq 2")
	failed := regexp.MustCompile(`(?m)^gsd_relay_checkpoint_failures_total\{reason="leaves"\} 1$`)
	require.Eventually(t, func() bool {
		resp, err := http.Get(base + "/metrics")
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return failed.Match(b)
	}, time.Minute, 20*time.Millisecond, "stderr: %s", &errOut)
}
