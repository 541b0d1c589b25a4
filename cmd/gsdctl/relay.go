package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/gsd-dev/gsd/anticheat/audit"
	"github.com/gsd-dev/gsd/internal/cpuprofile"
	"github.com/gsd-dev/gsd/spectator/relay"
	"github.com/spf13/cobra"
)

// relayCmd runs relays (issue 13): processes that serve watch and event
// streams from a node's (or another relay's) filtered feed, so that
// spectators cost the voters one stream per world instead of one each.
// add, list and remove keep the cluster's relay registry (api/relays).
func (a *app) relayCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "relay",
		Short: "Run relays of watch and event streams and keep the relay registry (docs/PROTOCOL.md, \"Relays\")",
	}
	cmd.AddCommand(a.relayRunCmd(), a.relayAddCmd(), a.relayListCmd(), a.relayRemoveCmd())
	return cmd
}

func (a *app) relayRunCmd() *cobra.Command {
	cfg := relay.DefaultConfig()
	var listen, tokenFile, cpuProfile string
	var reg registration
	var auditKeys []string
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Follow an upstream and serve its worlds' watch and event streams until stopped",
		Long: `Run a relay until interrupted. It follows the upstream (a gsd node, or
another relay) once per world a viewer asks for, over the upstream's
event stream cut to the relay's view, and serves
GET /v1/worlds/{world}/watch and GET /v1/worlds/{world}/events as a node
does, with /metrics and /healthz. Every viewer of the relay sees what its
token's class sees: give it the token of the class it is for.

With --audit-key (the cluster's audit public key; twice during a
rotation) it verifies the upstream's signed audit checkpoints of each
world it follows (signature, key, append-only growth by consistency
proofs) and, when its view sees every field, the events it receives
against the signed tree's leaves; it drops an upstream that sends a
forged, older or forked checkpoint or events that are not its leaves
(gsd_relay_checkpoint_failures_total{reason}), puts what it verified in
its keyframes and serves it to relays of it.`,
		Example: `  gsdctl relay run --upstream http://10.0.0.1:7070 --listen :7080 --token-file spectator.jwt
  gsdctl relay run --upstream http://relay-eu:7080 --listen :7081   # a relay of a relay`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfg.Upstream == "" {
				cfg.Upstream = "http://" + a.addrs[0]
				if a.tls.cfg != nil {
					cfg.Upstream = "https://" + a.addrs[0]
				}
			}
			if tokenFile != "" {
				if cfg.Token != "" {
					return usageError{errors.New("--token and --token-file are one or the other")}
				}
				// Read at each request to the upstream: a rotated file
				// takes over before the old token expires.
				read := func() (string, error) {
					b, err := os.ReadFile(tokenFile)
					if err != nil {
						return "", fmt.Errorf("--token-file: %w", err)
					}
					return strings.TrimSpace(string(b)), nil
				}
				if _, err := read(); err != nil {
					return usageError{err}
				}
				cfg.TokenSource = read
			}
			if a.tls.cfg != nil {
				cfg.HTTPClient = &http.Client{Transport: &http.Transport{TLSClientConfig: a.tls.cfg}}
			}
			for _, file := range auditKeys {
				b, err := os.ReadFile(file)
				if err != nil {
					return usageError{fmt.Errorf("--audit-key: %w", err)}
				}
				k, err := audit.ParseVerifyingKey(string(b))
				if err != nil {
					return usageError{fmt.Errorf("--audit-key %s: %w", file, err)}
				}
				cfg.AuditKeys = append(cfg.AuditKeys, k)
			}
			cfg.Logger = slog.New(slog.NewTextHandler(a.stderr, nil))
			if err := cfg.Validate(); err != nil {
				return usageError{err}
			}
			if err := reg.validate(listen); err != nil {
				return usageError{err}
			}
			if cpuProfile != "" {
				stop, err := cpuprofile.Start(cpuProfile)
				if err != nil {
					return usageError{err}
				}
				defer stop()
			}
			return a.runRelay(cmd.Context(), cfg, listen, reg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Upstream, "upstream", "", "base URL of the node or relay to follow (default: http://<first --addr>)")
	f.StringVar(&listen, "listen", "127.0.0.1:7080", "address to serve viewers on")
	f.StringVar(&cfg.Token, "token", "", "bearer token shown to the upstream: its role is the class whose view the relay serves")
	f.StringVar(&tokenFile, "token-file", "", "file holding --token, read again at each request to the upstream (rotate it before the token expires)")
	f.StringVar(&cfg.View, "view", "", "viewer class to ask the upstream for (with auth on, the token's role)")
	f.IntVar(&cfg.MaxViewers, "max-viewers", cfg.MaxViewers, "viewers served at once; beyond, 503 with Retry-After")
	f.DurationVar(&cfg.RetryAfter, "retry-after", cfg.RetryAfter, "Retry-After told to viewers refused when full")
	f.DurationVar(&cfg.IdleTimeout, "idle-timeout", cfg.IdleTimeout, "stop following a world nobody watched for this long")
	f.DurationVar(&cfg.UpstreamLinger, "upstream-linger", cfg.UpstreamLinger, "the linger= asked of the upstream's event stream (events come a window at a time: fewer bytes and writes for the voters; 0: none)")
	f.StringVar(&cfg.UpstreamForm, "upstream-form", cfg.UpstreamForm, "the form of the upstream's event lines: lean (form=lean: without what the relay rebuilds, fewer bytes for the voters) or whole")
	f.IntVar(&cfg.MaxEvents, "max-events", cfg.MaxEvents, "events held per world; older positions answer 410 archive_gap")
	f.DurationVar(&cfg.Pipeline.KeyframeInterval, "keyframe-interval", cfg.Pipeline.KeyframeInterval, "how often each view's join keyframe is made anew")
	f.DurationVar(&cfg.Pipeline.Tick, "tick", cfg.Pipeline.Tick, "how often watchers get a delta")
	f.IntVar(&cfg.Pipeline.Queue, "viewer-queue", cfg.Pipeline.Queue, "frames a watcher may have waiting; a slower one skips to the next keyframe")
	f.DurationVar(&cfg.Segments.Duration, "watch-segment", cfg.Segments.Duration, "length of one segment of the watch's HTTP variant (watch/index.json, watch/seg/{n}.ndjson)")
	f.IntVar(&cfg.Segments.Keep, "watch-segments-kept", cfg.Segments.Keep, "finished segments kept per world and delay")
	f.DurationVar(&cfg.Segments.Idle, "watch-segment-idle", cfg.Segments.Idle, "stop cutting a world and delay into segments this long after its last request")
	f.IntVar(&cfg.Segments.Max, "watch-segment-views", cfg.Segments.Max, "worlds and delays cut into segments at once; beyond, 503 with Retry-After")
	f.BoolVar(&reg.on, "register", false, "keep this relay in the cluster's relay registry (at --addr, with --secret) while it runs: put at each --heartbeat with its viewers, removed at exit")
	f.StringVar(&reg.id, "id", "", "with --register: the relay's id (default: from --public-url)")
	f.StringVar(&reg.url, "public-url", "", "with --register: where viewers reach this relay (default: http://<--listen>)")
	f.StringVar(&reg.region, "region", "", "with --register: the relay's region")
	f.StringVar(&reg.worlds, "worlds", "", "with --register: the worlds it serves, comma-separated (default: all)")
	f.DurationVar(&reg.heartbeat, "heartbeat", 10*time.Second, "with --register: how often it says it lives (the registry calls it stale after 30s without)")
	f.StringArrayVar(&auditKeys, "audit-key", nil, "the cluster's audit public key file (.pub): verify the upstream's checkpoints with it (repeat during a rotation)")
	f.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the relay (this process) to this file until it stops")
	f.DurationVar(&cfg.CheckpointInterval, "checkpoint-interval", relay.DefaultCheckpointInterval, "how often to ask the upstream for a world's newest checkpoint (with --audit-key)")
	return cmd
}

// runRelay serves a relay on listen until ctx ends, kept in the registry
// while it runs when reg says so.
func (a *app) runRelay(ctx context.Context, cfg relay.Config, listen string, reg registration) error {
	r, err := relay.New(cfg)
	if err != nil {
		return err
	}
	defer r.Close()
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("relay: %w", err)
	}
	srv := &http.Server{Handler: r.Handler(), ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(a.stdout, "relay listening on %s, following %s\n", ln.Addr(), cfg.Upstream)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	if reg.on {
		reg.complete(ln.Addr().String())
		fmt.Fprintf(a.stdout, "registering as relay %s at %s\n", reg.id, reg.url)
		rctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			c := a.client()
			defer c.Close()
			reg.run(rctx, c, cfg.MaxViewers, r.Viewers, cfg.Logger)
		}()
		defer func() { stop(); <-done }()
	}
	select {
	case err := <-errc:
		return fmt.Errorf("relay: %w", err)
	case <-ctx.Done():
	}
	r.Close() // ends the viewers' streams, so that Shutdown need not wait for them
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	<-errc
	return nil
}
