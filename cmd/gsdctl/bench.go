package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/gsd-dev/gsd/client"
	"github.com/gsd-dev/gsd/internal/cpuprofile"
	"github.com/gsd-dev/gsd/internal/localcluster"
	"github.com/gsd-dev/gsd/loadgen"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
)

// benchScenarios are the scenarios `gsdctl bench` knows, in suite order
// (failover last: it kills a node).
var benchScenarios = []string{"battle", "conflict-storm", "spectator-influx", "churn", "play", "failover"}

type benchOptions struct {
	gsd, dir, out       string
	keep, noSync, quiet bool
	nodes               int

	load loadgen.LoadParams
	tm   loadgen.Timing

	stormPlayers, stormRounds, stormBatch int
	spectators                            int
	ramp                                  time.Duration
	spectatorsAll                         bool
	spectatorDecodeEvery                  int
	spectatorLinger                       time.Duration
	spectatorNodes                        int
	spectatorRelays                       int
	churners                              int
	dwell, offline                        time.Duration
	killAfter, down                       time.Duration
	cpuProfile                            string
	bulkRate                              float64
	playEncoding                          string
	bulkOver                              string
	auth                                  bool
	authKeyFile                           string
	gsdArgs                               []string
	p10k                                  loadgen.Players10kParams
	spectate                              spectateOptions
	scenarios                             []string // what this run runs (startBenchCluster's node flags)
}

func (a *app) benchCmd() *cobra.Command {
	o := benchOptions{load: loadgen.DefaultLoadParams()}
	cmd := &cobra.Command{
		Use:   "bench [scenario...]",
		Short: "Run load scenarios against gsd and report latency, throughput and checks",
		Long: `bench drives gsd over its HTTP API with simulated players, open-loop at a
target rate: every --tick the actions due are sent (in actions:batch requests of
--batch actions; --batch 1 sends single POST /actions), and each action's
latency is measured from its scheduled send time, so stalls are not hidden
(coordinated omission).

Scenarios (default: all, in this order):
  battle            --players in one world at --rate actions/s
  conflict-storm    --storm-players take the same item each round; exactly one winner, verified
  spectator-influx  a battle, then 0 → --spectators event-stream followers over --ramp;
                    player P99 with and without spectators, and their ratio
  churn             --churners reconnect again and again (new connections), resume
                    the event stream at last seq + 1; gaps and duplicates counted
  play              --players (at most 10000) each on its own WebSocket play connection,
                    spread over the nodes, at --rate actions/s; action→result latency,
                    propagation to another player's play stream and the nodes' memory per
                    connection; with --bulk-rate a second phase adds bulk moves and the
                    critical propagation P99 is compared (--batch, --conns and
                    --observers do not apply); --play-bulk-over udp sends the bulk
                    moves over the UDP input lane and counts its packets (scenario
                    play-udp); --auth turns JWT auth on (play only)
  players-10k       (only when named) --steps of players on WebSocket play connections with
                    interest on (the local nodes get --play-interest-cell), ramped in at
                    --join-rate, --critical-per-player and --moves-per-player each, with
                    --churn-per-min; the largest step held at critical propagation P99 <= --goal
  failover          SIGKILL the leader --kill-after into the battle, restart it --down later;
                    recovery time and a check that no acknowledged event was lost

Without --addr it starts its own local cluster of --nodes gsd processes (fsync on
unless --no-sync) and samples their CPU and RSS from /proc; with --addr it drives
that cluster (failover is then skipped). It prints a table, writes the results
as JSON (--out) and a latency-percentile plot per scenario (SVG, next to it).`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runBench(cmd, o, args)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.gsd, "gsd", "", "gsd binary (default: next to gsdctl, then $PATH)")
	f.StringVar(&o.dir, "dir", "", "working directory of the local cluster (default: a new temporary one)")
	f.BoolVar(&o.keep, "keep", false, "keep the working directory afterwards")
	f.IntVar(&o.nodes, "nodes", 3, "nodes of the local cluster")
	f.BoolVar(&o.noSync, "no-sync", false, "start the local nodes with --no-sync (no fsync)")
	f.StringArrayVar(&o.gsdArgs, "gsd-arg", nil, "extra flag for every local gsd node, repeatable (e.g. --gsd-arg=--play-interest-cell=100)")
	f.StringVar(&o.out, "out", "", "JSON result file (default bench-results/bench-<time>.json)")
	f.BoolVar(&o.quiet, "quiet", false, "no live progress")

	f.IntVar(&o.load.Players, "players", o.load.Players, "simulated players in the world")
	f.IntVar(&o.load.Items, "items", o.load.Items, "contested items in the battle")
	f.Float64Var(&o.load.Rate, "rate", o.load.Rate, "actions per second, all players together (open loop)")
	f.DurationVar(&o.load.Tick, "tick", o.load.Tick, "scheduling interval: the actions due are sent every tick")
	f.IntVar(&o.load.Batch, "batch", o.load.Batch, "actions per HTTP request (1: POST /actions)")
	f.IntVar(&o.load.Conns, "conns", o.load.Conns, "HTTP requests in flight at most")
	f.IntVar(&o.load.Observers, "observers", o.load.Observers, "event-stream followers on follower nodes measuring propagation")
	f.Uint64Var(&o.load.Seed, "seed", o.load.Seed, "seed of the players' choices")
	f.DurationVar(&o.tm.Warmup, "warmup", 2*time.Second, "warm-up before measuring")
	f.DurationVar(&o.tm.Duration, "duration", 10*time.Second, "measured time (per phase)")

	f.IntVar(&o.stormPlayers, "storm-players", 1000, "conflict-storm: players racing for each item")
	f.IntVar(&o.stormRounds, "rounds", 20, "conflict-storm: rounds")
	f.IntVar(&o.stormBatch, "storm-batch", 100, "conflict-storm: actions per HTTP request")
	f.IntVar(&o.spectators, "spectators", 100, "spectator-influx: spectators joining")
	f.DurationVar(&o.ramp, "ramp", 3*time.Second, "spectator-influx: they join evenly over this")
	f.IntVar(&o.spectatorDecodeEvery, "spectator-decode-every", 10, "spectator-influx: one spectator in N decodes events and records their latency; the others count raw lines (the load generator shares the cores with gsd)")
	f.DurationVar(&o.spectatorLinger, "spectator-linger", 100*time.Millisecond, "spectator-influx: the spectators' streams gather events this long between writes (0: every batch at once)")
	f.IntVar(&o.spectatorNodes, "spectator-nodes", 0, "spectator-influx: put the spectators on this many of their nodes only (0: all; 1 with the default placement: one follower serves them all and the other acknowledges the leader undisturbed)")
	f.BoolVar(&o.spectatorsAll, "spectators-on-leader", false, "spectator-influx: spread spectators over every node, the leader too (default: followers only)")
	f.IntVar(&o.spectatorRelays, "relays", 0, "spectator-influx: put the spectators on this many relays (run inside gsdctl) that follow their nodes, instead of on the nodes")
	f.StringVar(&o.playEncoding, "play-encoding", "json", "play: the players' WebSocket subprotocol, json (gsd.json.v1) or msgpack (gsd.msgpack.v1)")
	f.Float64Var(&o.bulkRate, "bulk-rate", 0, "play: bulk moves/s added in a second measured phase, to compare critical propagation with and without (0: one phase)")
	f.StringVar(&o.bulkOver, "play-bulk-over", loadgen.BulkOverWS, "play: how the bulk moves travel, ws (play actions on the WebSocket) or udp (the UDP input lane; the local nodes get --udp-addr 127.0.0.1:0, an --addr cluster must serve it); udp reports as scenario play-udp")
	f.BoolVar(&o.auth, "auth", false, "play: auth on: the local nodes verify HS256 tokens (a fresh key in --dir, or --auth-key-file) and every player's connections carry a token the load generator mints; play only")
	f.StringVar(&o.authKeyFile, "auth-key-file", "", "play with --auth: the HS256 key file the nodes verify with (needed with --addr)")
	f.IntVar(&o.churners, "churners", 50, "churn: reconnecting clients")
	f.DurationVar(&o.dwell, "dwell", 500*time.Millisecond, "churn: mean time connected")
	f.DurationVar(&o.offline, "offline", 200*time.Millisecond, "churn: mean time away")
	f.DurationVar(&o.killAfter, "kill-after", 3*time.Second, "failover: kill the leader this far into the measured phase")
	f.DurationVar(&o.down, "down", 3*time.Second, "failover: restart the killed node after this (0: never)")
	f.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the load generator (this process) to this file")
	addP10kFlags(f, &o)
	addSpectateFlags(f, &o.spectate)
	cmd.AddCommand(a.benchReportCmd())
	return cmd
}

func (a *app) runBench(cmd *cobra.Command, o benchOptions, args []string) error {
	scenarios := args
	if len(scenarios) == 0 || slices.Contains(scenarios, "all") {
		scenarios = benchScenarios
	}
	for _, s := range scenarios {
		if !knownScenario(s) {
			return usageError{fmt.Errorf("unknown scenario %q (want %s or all)", s, scenarioNames())}
		}
	}
	if o.tm.Duration <= 0 || o.tm.Warmup < 0 || o.nodes < 1 {
		return usageError{errors.New("--duration and --nodes must be positive, --warmup not negative")}
	}
	if o.bulkOver != loadgen.BulkOverWS && o.bulkOver != loadgen.BulkOverUDP {
		return usageError{fmt.Errorf("--play-bulk-over %q: want %s or %s", o.bulkOver, loadgen.BulkOverWS, loadgen.BulkOverUDP)}
	}
	o.scenarios = scenarios
	ctx := cmd.Context()
	if o.cpuProfile != "" {
		stop, err := cpuprofile.Start(o.cpuProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	out := a.stdout
	remote := cmd.Flag("addr") != nil && cmd.Flag("addr").Changed
	if err := checkBenchAuth(o, scenarios, remote); err != nil {
		return usageError{err}
	}
	t := &loadgen.Target{Log: out}
	cluster := ""
	if remote {
		t.Addrs = a.addrs
		cluster = "existing cluster at " + strings.Join(a.addrs, ",")
	} else {
		lc, dir, err := a.startBenchCluster(ctx, &o)
		if err != nil {
			return err
		}
		if !o.keep {
			defer os.RemoveAll(dir)
		}
		defer lc.Stop()
		t.Addrs = lc.Addrs()
		for _, n := range lc.Nodes {
			t.Procs = append(t.Procs, loadgen.Proc{Name: "gsd-" + n.ID, PID: n.PID})
		}
		t.KillLeader = func(ctx context.Context) (string, error) {
			c := client.New(lc.Addrs())
			defer c.Close()
			return a.killLeader(ctx, lc, c)
		}
		t.Restart = func(ctx context.Context, id string) error { return lc.Restart(ctx, lc.Index(id)) }
		sync := "fsync on"
		if o.noSync {
			sync = "no fsync"
		}
		cluster = fmt.Sprintf("%d local gsd processes on loopback (%s), started by gsdctl bench", o.nodes, sync)
	}
	if !o.quiet {
		t.Progress = benchProgress(out)
	}
	rep := &loadgen.Report{Started: time.Now(), Command: "gsdctl " + strings.Join(os.Args[1:], " "), Cluster: cluster,
		Machine: loadgen.DescribeMachine()}
	if len(os.Args) < 2 || !strings.Contains(os.Args[1], "bench") {
		rep.Command = "gsdctl bench " + strings.Join(args, " ") // under test
	}
	stamp := time.Now().UTC().Format("20060102T150405Z")
	var failed []string
	for _, s := range scenarios {
		p := o.load
		p.World = s + "-" + stamp
		var (
			r   *loadgen.Result
			err error
		)
		fmt.Fprintf(out, "== %s\n", s)
		switch s {
		case "battle":
			r, err = loadgen.Battle(ctx, t, p, o.tm)
		case "conflict-storm":
			r, err = loadgen.ConflictStorm(ctx, t, loadgen.StormParams{World: p.World, Players: o.stormPlayers, Rounds: o.stormRounds, Batch: o.stormBatch})
		case "spectator-influx":
			if o.spectate.stepped() {
				r, err = runSpectatorSteps(ctx, t, p, o)
				break
			}
			r, err = loadgen.SpectatorInflux(ctx, t, p, loadgen.SpectatorParams{Spectators: o.spectators, Ramp: o.ramp, OnFollowers: !o.spectatorsAll, DecodeEvery: o.spectatorDecodeEvery, Linger: o.spectatorLinger, Nodes: o.spectatorNodes, Relays: benchRelays(o.spectatorRelays)}, o.tm)
		case "churn":
			r, err = loadgen.Churn(ctx, t, p, loadgen.ChurnParams{Clients: o.churners, Dwell: o.dwell, Offline: o.offline}, o.tm)
		case "play":
			var key []byte
			if key, err = benchAuthKey(o); err == nil {
				r, err = loadgen.PlayBattle(ctx, t, p, loadgen.PlayParams{BulkRate: o.bulkRate, Encoding: o.playEncoding, BulkOver: o.bulkOver, AuthKey: key}, o.tm)
			}
		case players10k:
			r, err = loadgen.Players10k(ctx, t, p, o.p10k, o.tm)
		case "failover":
			if t.KillLeader == nil {
				fmt.Fprintln(out, "skipped: failover needs the local cluster bench starts (no --addr)")
				continue
			}
			r, err = loadgen.Failover(ctx, t, p, loadgen.FailoverParams{KillAfter: o.killAfter, Down: o.down}, o.tm)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
		r.Command = rep.Command
		rep.Results = append(rep.Results, r)
		if !r.OK() {
			failed = append(failed, s)
		}
	}
	fmt.Fprintln(out)
	loadgen.WriteTable(out, rep.Results)
	if err := writeBenchFiles(out, o.out, rep); err != nil {
		return err
	}
	if len(failed) > 0 {
		return fmt.Errorf("checks failed in: %s", strings.Join(failed, ", "))
	}
	return nil
}

func (a *app) startBenchCluster(ctx context.Context, o *benchOptions) (*localcluster.Cluster, string, error) {
	bin, err := findGSD(o.gsd)
	if err != nil {
		return nil, "", err
	}
	dir := o.dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "gsd-bench-"); err != nil {
			return nil, "", err
		}
	}
	args := []string{"--heartbeat-timeout", "500ms", "--election-timeout", "500ms", "--log-level", "warn"}
	if o.noSync {
		args = append(args, "--no-sync")
	}
	if o.bulkOver == loadgen.BulkOverUDP {
		// Each node's own free port, advertised in its welcomes.
		args = append(args, "--udp-addr", "127.0.0.1:0")
	}
	authArgs, err := benchAuthArgs(o, dir)
	if err != nil {
		if !o.keep {
			os.RemoveAll(dir)
		}
		return nil, "", err
	}
	args = append(args, authArgs...)
	args = append(args, p10kNodeArgs(o, o.scenarios)...)
	args = append(args, o.gsdArgs...)
	fmt.Fprintf(a.stdout, "Starting %d gsd nodes in %s ...\n", o.nodes, dir)
	lc, err := localcluster.Start(ctx, localcluster.Options{Bin: bin, Dir: dir, Nodes: o.nodes, Args: args,
		Env: coverEnv()})
	if err != nil {
		if !o.keep {
			os.RemoveAll(dir)
		}
		return nil, "", err
	}
	return lc, dir, nil
}

// coverEnv passes GOCOVERDIR to coverage-instrumented gsd binaries under test.
func coverEnv() []string {
	if d := os.Getenv("GSD_GOCOVERDIR"); d != "" && os.Getenv("GSD_BENCH_COVER") != "" {
		return []string{"GOCOVERDIR=" + d}
	}
	return nil
}

// benchProgress shows a bar (or a spinner for phases of unknown length).
func benchProgress(out io.Writer) func(ctx context.Context, phase string, total time.Duration, status func() string) {
	return func(ctx context.Context, phase string, total time.Duration, status func() string) {
		max := int64(-1)
		if total > 0 {
			max = total.Milliseconds()
		}
		bar := progressbar.NewOptions64(max,
			progressbar.OptionSetWriter(out),
			progressbar.OptionSetWidth(24),
			progressbar.OptionThrottle(250*time.Millisecond),
			progressbar.OptionSetPredictTime(false),
			progressbar.OptionClearOnFinish(),
			// No spinner goroutine: its unlocked IsStarted races with
			// Finish (progressbar v3.19.1); our ticker renders anyway.
			progressbar.OptionSetSpinnerChangeInterval(0),
		)
		start := time.Now()
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				_ = bar.Finish()
				fmt.Fprintf(out, "  %-8s %s\n", phase, status())
				return
			case <-tick.C:
			}
			bar.Describe(status())
			if max > 0 {
				_ = bar.Set64(min(time.Since(start).Milliseconds(), max))
			} else {
				_ = bar.Add(1)
			}
		}
	}
}

// writeBenchFiles writes the JSON result and one SVG plot per scenario.
func writeBenchFiles(out io.Writer, path string, rep *loadgen.Report) error {
	if path == "" {
		path = filepath.Join("bench-results", "bench-"+rep.Started.UTC().Format("20060102T150405Z")+".json")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nwrote %s\n", path)
	base := strings.TrimSuffix(path, filepath.Ext(path))
	for _, r := range rep.Results {
		p := base + "-" + r.Scenario + ".svg"
		if err := writePlot(p, r.Scenario+": latency by percentile ("+r.Level+")", loadgen.SeriesOf(r)); err != nil {
			return err
		}
		fmt.Fprintf(out, "wrote %s\n", p)
	}
	return nil
}

func writePlot(path, title string, series []loadgen.Series) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := loadgen.WritePercentilePlot(f, title, series); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
