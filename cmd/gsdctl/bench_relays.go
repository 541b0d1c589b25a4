package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/gsd-dev/gsd/spectator/relay"
)

// benchRelays returns what spectator-influx calls to put its spectators
// on n relays (nil for none): relays run inside gsdctl, each following
// one of the nodes the spectators would have joined, in turn. Their CPU
// and memory are the load generator's process's in the report, apart
// from the gsd processes' (the voters').
func benchRelays(n int) func(ctx context.Context, upstreams []string) ([]string, func(), error) {
	if n <= 0 {
		return nil
	}
	return func(_ context.Context, upstreams []string) ([]string, func(), error) {
		if len(upstreams) == 0 {
			return nil, nil, errors.New("relays: no node to follow")
		}
		var (
			addrs []string
			stops []func()
		)
		stop := func() {
			for _, s := range stops {
				s()
			}
		}
		for i := range n {
			cfg := relay.DefaultConfig()
			cfg.Upstream = upstreams[i%len(upstreams)]
			if !strings.Contains(cfg.Upstream, "://") {
				cfg.Upstream = "http://" + cfg.Upstream
			}
			r, err := relay.New(cfg)
			if err != nil {
				stop()
				return nil, nil, err
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				r.Close()
				stop()
				return nil, nil, fmt.Errorf("relay %d: %w", i, err)
			}
			srv := &http.Server{Handler: r.Handler()}
			done := make(chan struct{})
			go func() {
				defer close(done)
				_ = srv.Serve(ln)
			}()
			stops = append(stops, func() {
				r.Close() // ends its streams first
				_ = srv.Close()
				<-done
			})
			addrs = append(addrs, ln.Addr().String())
		}
		return addrs, stop, nil
	}
}
