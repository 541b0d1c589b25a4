package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/gsd-dev/gsd/store"
	"github.com/spf13/cobra"
)

// options are gsd's command-line settings.
type options struct {
	id            string
	dataDir       string
	httpAddr      string
	httpAdvertise string
	raftAddr      string
	raftAdvertise string
	join          []string
	joinTimeout   time.Duration
	region        string
	logLevel      string
	logFormat     string

	heartbeatTimeout  time.Duration
	commitTimeout     time.Duration
	pipelineMin       int
	bulkPipelineMin   int
	electionTimeout   time.Duration
	snapshotThreshold uint64
	snapshotInterval  time.Duration
	trailingLogs      uint64
	applyTimeout      time.Duration
	archiveMaxAge     time.Duration
	archiveMaxEvents  uint64
	diskStallTimeout  time.Duration
	noSync            bool

	peerAddrFile    string
	shutdownTimeout time.Duration
	cpuProfile      string

	auth    authOptions
	udp     udpOptions
	play    playOptions
	cluster clusterOptions
	pgSink  pgSinkOptions
	limit   rateLimitOptions
	tls     tlsOptions
	audit   auditOptions
	expiry  expiryOptions
	worlds  worldExpiryOptions
	checks  checkpointOptions
	config  configOptions
	shards  shardOptions

	analytics analyticsOptions
	archive   archiveOptions
	detect    detectOptions
	flagsHook flagsHookOptions
	otel      otelOptions
	watch     watchOptions
}

// run is gsd's main, testable: it parses args, runs the node until ctx ends
// and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmd := newRootCmd(ctx, stderr)
	cmd.SetArgs(args)
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	if err := cmd.ExecuteContext(ctx); err != nil {
		fmt.Fprintf(stderr, "gsd: %v\n", err)
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintln(stderr, "Run 'gsd --help' for usage.")
		}
		if errors.Is(err, errHealed) {
			return exitHealed // heal.go: restart to rejoin empty
		}
		return 1
	}
	return 0
}

// usageError marks errors in the command line, as opposed to failures while running.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

func newRootCmd(ctx context.Context, stderr io.Writer) *cobra.Command {
	o := &options{}
	cmd := &cobra.Command{
		Use:   "gsd",
		Short: "Run a gsd node: the Raft-replicated game-state store and its HTTP API",
		Long: `gsd runs one node of a gsd shard.

A node with an empty data directory and no --join bootstraps a one-node
cluster. With --join it starts empty and asks the cluster at the given HTTP
address(es) to add it as a voter. A node restarted on existing data rejoins its
cluster from that data and ignores --join.`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path := o.config.file
			if path == "" {
				path = os.Getenv(envName("config"))
			}
			if err := applyConfig(cmd.Flags(), path, os.LookupEnv); err != nil {
				return usageError{err}
			}
			if err := o.complete(); err != nil {
				return usageError{err}
			}
			if o.config.print {
				return printConfig(cmd.OutOrStdout(), cmd.Flags(), os.LookupEnv)
			}
			log, err := newLogger(stderr, o.logLevel, o.logFormat)
			if err != nil {
				return usageError{err}
			}
			return runNode(ctx, o, log)
		},
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	f := cmd.Flags()
	f.StringVar(&o.id, "id", "", `node id, unique in the cluster (default: hostname + "-" + raft port)`)
	f.StringVar(&o.dataDir, "data-dir", "./gsd-data", "data directory (raft log, snapshots, event archive)")
	f.StringVar(&o.httpAddr, "http-addr", "127.0.0.1:7070", "address the HTTP API listens on")
	f.StringVar(&o.httpAdvertise, "http-advertise", "", "HTTP address other nodes use to reach this one (default: --http-addr)")
	f.StringVar(&o.raftAddr, "raft-addr", "127.0.0.1:7071", "address the Raft transport listens on")
	f.StringVar(&o.raftAdvertise, "raft-advertise", "", "Raft address peers dial (default: --raft-addr)")
	f.StringSliceVar(&o.join, "join", nil, "HTTP address(es) of cluster members to join through (comma-separated); ignored when the data dir has state")
	f.DurationVar(&o.joinTimeout, "join-timeout", 2*time.Minute, "how long to keep trying to join")
	f.StringVar(&o.region, "region", "local", "region of this node")
	f.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	f.StringVar(&o.logFormat, "log-format", "text", "log format: text or json")
	f.DurationVar(&o.heartbeatTimeout, "heartbeat-timeout", 0, "Raft heartbeat timeout (default 1s)")
	f.DurationVar(&o.electionTimeout, "election-timeout", 0, "Raft election timeout (default 1s)")
	f.IntVar(&o.pipelineMin, "batch-pipeline-min", 0, "the least actions a batch carries to be proposed while its group's earlier entries are in flight (a smaller one waits for them: fewer, bigger entries; a critical batch behind bulk entries goes regardless); 0 pipelines every batch (docs/OPERATIONS.md)")
	f.IntVar(&o.bulkPipelineMin, "batch-bulk-pipeline-min", store.DefaultConfig().Batch.BulkPipelineMin, "--batch-pipeline-min for a batch of bulk actions and session acks only: a smaller one waits for its group's entries in flight to commit (bulk moves join fewer, bigger entries; a critical action that joins it sends it); 0 turns it off: bulk batches left to --batch-pipeline-min, acks critical (docs/OPERATIONS.md)")
	f.DurationVar(&o.commitTimeout, "commit-timeout", 0, "how often an idle leader sends followers an empty append with its commit index (Raft CommitTimeout; default 50ms, at least 1ms); a lone commit is told at once by a commit notice (docs/OPERATIONS.md)")
	f.Uint64Var(&o.snapshotThreshold, "snapshot-threshold", 0, "log entries between snapshots (default 8192)")
	f.DurationVar(&o.snapshotInterval, "snapshot-interval", 0, "how often to check the snapshot threshold (default 30s)")
	f.Uint64Var(&o.trailingLogs, "trailing-logs", 0, "log entries kept after a snapshot for slow followers (default 10240)")
	f.DurationVar(&o.applyTimeout, "apply-timeout", 0, "how long a proposal may wait in Raft before it is outcome_unknown (default 10s)")
	f.DurationVar(&o.archiveMaxAge, "archive-max-age", 24*time.Hour, "keep events in the event archive this long (0: forever)")
	f.Uint64Var(&o.archiveMaxEvents, "archive-max-events", 0, "keep at most this many newest events per world in the archive (0: no bound)")
	f.DurationVar(&o.diskStallTimeout, "disk-stall-timeout", 10*time.Second, "exit when one raft log write takes longer, so a node with a working disk leads (0: never)")
	f.BoolVar(&o.noSync, "no-sync", false, "skip fsync of the Raft log (UNSAFE: a machine crash can lose acknowledged writes; tests only)")
	f.StringVar(&o.peerAddrFile, "peer-addr-file", "", "JSON file mapping node id to the Raft address to dial it at; re-read when it changes and on SIGHUP")
	f.DurationVar(&o.shutdownTimeout, "shutdown-timeout", 15*time.Second, "how long a graceful shutdown may take")
	f.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run to this file (relative: in the data dir)")
	o.auth.flags(f)
	o.udp.flags(f)
	o.play.flags(f)
	o.cluster.flags(f)
	o.pgSink.flags(f)
	o.limit.flags(f)
	o.tls.flags(f)
	o.audit.flags(f)
	o.expiry.flags(f)
	o.worlds.flags(f)
	o.checks.flags(f)
	o.config.flags(f)
	cmd.AddCommand(restoreCmd())
	o.shards.flags(f)
	o.analytics.flags(f)
	o.archive.flags(f)
	o.detect.flags(f)
	o.flagsHook.flags(f)
	o.otel.flags(f)
	o.watch.flags(f)
	return cmd
}

// complete fills defaults that depend on other flags and checks the values.
func (o *options) complete() error {
	var errs []error
	for name, addr := range map[string]string{"--http-addr": o.httpAddr, "--raft-addr": o.raftAddr} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			errs = append(errs, fmt.Errorf("%s %q: %v", name, addr, err))
		}
	}
	if o.raftAdvertise == "" {
		o.raftAdvertise = o.raftAddr
	} else if _, _, err := net.SplitHostPort(o.raftAdvertise); err != nil {
		errs = append(errs, fmt.Errorf("--raft-advertise %q: %v", o.raftAdvertise, err))
	}
	if o.httpAdvertise != "" {
		if _, _, err := net.SplitHostPort(o.httpAdvertise); err != nil {
			errs = append(errs, fmt.Errorf("--http-advertise %q: %v", o.httpAdvertise, err))
		}
	}
	if _, err := o.auth.config(context.Background(), false, slog.Default()); err != nil {
		errs = append(errs, err)
	}
	if err := o.play.check(); err != nil {
		errs = append(errs, err)
	}
	if err := o.limit.check(); err != nil {
		errs = append(errs, err)
	}
	if err := o.watch.check(); err != nil {
		errs = append(errs, err)
	}
	if err := o.expiry.check(); err != nil {
		errs = append(errs, err)
	}
	if err := o.worlds.check(); err != nil {
		errs = append(errs, err)
	}
	if err := o.checks.check(); err != nil {
		errs = append(errs, err)
	}
	if _, err := o.cluster.secret(); err != nil {
		errs = append(errs, err)
	}
	if _, _, err := o.pgSink.config(slog.Default()); err != nil {
		errs = append(errs, err)
	}
	if err := o.analytics.check(o.dataDir); err != nil {
		errs = append(errs, err)
	}
	if err := o.tls.complete(&o.id, slog.Default()); err != nil {
		errs = append(errs, err)
	}
	if _, err := o.audit.signers(); err != nil {
		errs = append(errs, err)
	}
	if err := o.archive.check(); err != nil {
		errs = append(errs, err)
	}
	if _, err := o.detect.detectConfig(); err != nil {
		errs = append(errs, err)
	}
	if err := o.flagsHook.check(o.dataDir); err != nil {
		errs = append(errs, err)
	}
	if err := o.otel.check(); err != nil {
		errs = append(errs, err)
	}
	if o.id == "" {
		if _, port, err := net.SplitHostPort(o.raftAddr); err == nil {
			host, herr := os.Hostname()
			if herr != nil || host == "" {
				host = "gsd"
			}
			o.id = host + "-" + port
		}
	}
	if m, err := o.shards.load(o); err != nil {
		errs = append(errs, err)
	} else {
		o.shards.m = m
	}
	var join []string
	for _, j := range o.join {
		if j = strings.TrimSpace(j); j != "" {
			join = append(join, j)
		}
	}
	o.join = join
	if o.dataDir == "" {
		errs = append(errs, errors.New("--data-dir must not be empty"))
	}
	if o.region == "" {
		errs = append(errs, errors.New("--region must not be empty"))
	}
	for name, d := range map[string]time.Duration{
		"--heartbeat-timeout": o.heartbeatTimeout, "--election-timeout": o.electionTimeout,
		"--snapshot-interval": o.snapshotInterval, "--apply-timeout": o.applyTimeout,
		"--archive-max-age": o.archiveMaxAge, "--disk-stall-timeout": o.diskStallTimeout,
	} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("%s must not be negative", name))
		}
	}
	if o.commitTimeout < 0 || o.commitTimeout > 0 && o.commitTimeout < time.Millisecond {
		errs = append(errs, errors.New("--commit-timeout must be at least 1ms (or 0: the default)"))
	}
	if o.pipelineMin < 0 {
		errs = append(errs, errors.New("--batch-pipeline-min must not be negative"))
	}
	if o.bulkPipelineMin < 0 {
		errs = append(errs, errors.New("--batch-bulk-pipeline-min must not be negative"))
	}
	if o.joinTimeout <= 0 {
		errs = append(errs, errors.New("--join-timeout must be positive"))
	}
	if o.shutdownTimeout <= 0 {
		errs = append(errs, errors.New("--shutdown-timeout must be positive"))
	}
	return errors.Join(errs...)
}

// newLogger returns the process logger.
func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

// portOf returns the port of host:port, or "" when it has none.
func portOf(addr string) string {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	if _, err := strconv.Atoi(p); err != nil {
		return ""
	}
	return p
}
