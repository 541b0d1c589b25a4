package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/gsd-dev/gsd/client"
	"github.com/gsd-dev/gsd/internal/localcluster"
	"github.com/gsd-dev/gsd/loadgen"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
)

// demoOptions size `gsdctl demo`.
type demoOptions struct {
	gsd      string
	dir      string
	keep     bool
	duration time.Duration
	players  int
	items    int
	down     time.Duration
}

func (a *app) demoCmd() *cobra.Command {
	o := demoOptions{}
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Start a local 3-node cluster, run a battle, kill the leader halfway, and summarise",
		Long: `demo starts three gsd processes on loopback (random ports, a temporary data
directory), creates a battle world, runs simulated players against it with
live progress, SIGKILLs the leader halfway, restarts it a little later, and
prints a summary: actions, conflicts, failover time, latency, and whether
every replica reports the same state hash at the same seq. It stops
everything it started.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.runDemo(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.gsd, "gsd", "", "gsd binary (default: next to gsdctl, then $PATH)")
	f.StringVar(&o.dir, "dir", "", "working directory for data and logs (default: a new temporary one)")
	f.BoolVar(&o.keep, "keep", false, "keep the working directory afterwards")
	f.DurationVar(&o.duration, "duration", 20*time.Second, "how long the battle runs")
	f.IntVar(&o.players, "players", 48, "simulated players")
	f.IntVar(&o.items, "items", 6, "items the players race for")
	f.DurationVar(&o.down, "down", 3*time.Second, "how long the killed leader stays down")
	return cmd
}

func findGSD(explicit string) (string, error) {
	if explicit != "" {
		return explicit, nil
	}
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), "gsd")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	p, err := exec.LookPath("gsd")
	if err != nil {
		return "", errors.New("cannot find the gsd binary: run `make build` or pass --gsd")
	}
	return p, nil
}

func (a *app) runDemo(ctx context.Context, o demoOptions) error {
	if o.duration <= 0 || o.players < 1 || o.items < 1 {
		return usageError{errors.New("--duration, --players and --items must be positive")}
	}
	bin, err := findGSD(o.gsd)
	if err != nil {
		return err
	}
	dir := o.dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "gsd-demo-"); err != nil {
			return err
		}
	}
	if !o.keep {
		defer os.RemoveAll(dir)
	}
	out := a.stdout
	fmt.Fprintf(out, "Starting 3 gsd nodes in %s ...\n", dir)
	lc, err := localcluster.Start(ctx, localcluster.Options{
		Bin: bin, Dir: dir, Nodes: 3,
		Args: []string{"--heartbeat-timeout", "500ms", "--election-timeout", "500ms", "--log-level", "warn"},
	})
	if err != nil {
		return err
	}
	defer lc.Stop()
	for _, n := range lc.Nodes {
		fmt.Fprintf(out, "  %s http=%s raft=%s pid=%d\n", n.ID, n.HTTPAddr, n.RaftAddr, n.PID())
	}
	c := client.New(lc.Addrs(), client.WithAttemptTimeout(2*time.Second), client.WithMaxAttempts(1000))
	defer c.Close()
	cfg := loadgen.DefaultBattleConfig()
	cfg.Players, cfg.Items = o.players, o.items
	setupCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = loadgen.Setup(setupCtx, c, cfg)
	cancel()
	if err != nil {
		return err
	}

	st := &loadgen.Stats{}
	battleCtx, stopBattle := context.WithTimeout(ctx, o.duration)
	defer stopBattle()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = loadgen.RunBattle(battleCtx, c, cfg, st)
	}()

	fmt.Fprintf(out, "Battle: %d players, %d contested items, %s; the leader is killed at %s.\n",
		cfg.Players, cfg.Items, o.duration, o.duration/2)
	fo := a.demoProgress(battleCtx, out, lc, c, st, o)
	wg.Wait()
	return a.demoSummary(ctx, out, lc, c, cfg, st, o, fo)
}

// failover records what happened to the killed leader.
type failover struct {
	killed   string
	killedAt time.Time
	recovery time.Duration // kill → first applied action after it
	err      error
}

// demoProgress shows a live bar until the battle ends, killing the leader
// halfway and restarting it after o.down.
func (a *app) demoProgress(ctx context.Context, out io.Writer, lc *localcluster.Cluster, c *client.Client, st *loadgen.Stats, o demoOptions) *failover {
	bar := progressbar.NewOptions64(o.duration.Milliseconds(),
		progressbar.OptionSetWriter(out),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(200*time.Millisecond),
		progressbar.OptionShowElapsedTimeOnFinish(),
		progressbar.OptionSetPredictTime(false),
	)
	start := time.Now()
	fo := &failover{}
	restarted := false
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			_ = bar.Finish()
			fmt.Fprintln(out)
			if fo.killed != "" && !restarted {
				fo.err = errors.Join(fo.err, lc.Restart(context.Background(), lc.Index(fo.killed)))
			}
			return fo
		case <-tick.C:
		}
		el := time.Since(start)
		if fo.killed == "" && el >= o.duration/2 {
			fo.killed, fo.err = a.killLeader(ctx, lc, c)
			fo.killedAt = time.Now()
		}
		if fo.killed != "" && fo.recovery == 0 {
			if last := st.LastOK.Load(); last > fo.killedAt.UnixNano() {
				fo.recovery = time.Duration(last - fo.killedAt.UnixNano())
			}
		}
		if fo.killed != "" && !restarted && time.Since(fo.killedAt) >= o.down {
			restarted = true
			if err := lc.Restart(ctx, lc.Index(fo.killed)); err != nil && ctx.Err() == nil {
				fo.err = errors.Join(fo.err, err)
			}
		}
		state := "all up"
		switch {
		case fo.killed != "" && !restarted:
			state = fo.killed + " killed"
		case restarted:
			state = fo.killed + " back"
		}
		rate := float64(st.Applied.Load()+st.Conflicts.Load()+st.Rejected.Load()) / el.Seconds()
		bar.Describe(fmt.Sprintf("actions %6d  %5.0f/s  conflicts %5d  %-10s", st.Sent.Load(), rate, st.Conflicts.Load(), state))
		_ = bar.Set64(min(el.Milliseconds(), o.duration.Milliseconds()))
	}
}

func (a *app) killLeader(ctx context.Context, lc *localcluster.Cluster, c *client.Client) (string, error) {
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	s, err := c.Status(sctx)
	if err != nil {
		return "", fmt.Errorf("find leader: %w", err)
	}
	i := lc.Index(s.Leader)
	if i < 0 {
		return "", fmt.Errorf("leader %q is not one of ours", s.Leader)
	}
	return s.Leader, lc.Kill(i)
}

func (a *app) demoSummary(ctx context.Context, out io.Writer, lc *localcluster.Cluster, c *client.Client,
	cfg loadgen.BattleConfig, st *loadgen.Stats, o demoOptions, fo *failover) error {
	lat := st.Latencies()
	slices.Sort(lat)
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(p*float64(len(lat))))]
	}
	answered := st.Applied.Load() + st.Conflicts.Load() + st.Rejected.Load()
	fmt.Fprintln(out, "Summary")
	fmt.Fprintf(out, "  actions sent        %d (%.0f/s answered)\n", st.Sent.Load(), float64(answered)/o.duration.Seconds())
	fmt.Fprintf(out, "  applied             %d\n", st.Applied.Load())
	fmt.Fprintf(out, "  conflicts           %d (players racing for the same item; one winner each time)\n", st.Conflicts.Load())
	fmt.Fprintf(out, "  rejected            %d\n", st.Rejected.Load())
	fmt.Fprintf(out, "  answered as repeats %d (retries with the same seq after an unknown outcome)\n", st.Duplicates.Load())
	fmt.Fprintf(out, "  unknown outcome     %d (cut off by the end of the battle or an error)\n", st.Failed.Load())
	fmt.Fprintf(out, "  latency             p50 %s  p99 %s  max %s (client → commit → answer)\n",
		pct(0.50).Round(10*time.Microsecond), pct(0.99).Round(10*time.Microsecond), pct(1).Round(10*time.Microsecond))
	if fo.killed != "" {
		rec := "not measured"
		if fo.recovery > 0 {
			rec = fo.recovery.Round(time.Millisecond).String()
		}
		fmt.Fprintf(out, "  failover            killed leader %s; first applied action %s later\n", fo.killed, rec)
	}
	if fo.err != nil {
		fmt.Fprintf(out, "  fault step error    %v\n", fo.err)
	}

	vctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	ok, err := verifyDemo(vctx, out, lc, c, cfg, st)
	if err != nil {
		return err
	}
	if !ok || fo.err != nil {
		return errors.New("demo found a problem (see above)")
	}
	return nil
}

// verifyDemo checks that every replica has the same hash at the same seq and
// that the damage the players were told was applied is what the world holds.
func verifyDemo(ctx context.Context, out io.Writer, lc *localcluster.Cluster, c *client.Client, cfg loadgen.BattleConfig, st *loadgen.Stats) (bool, error) {
	top, err := c.Hash(ctx, cfg.World, 0)
	if err != nil {
		return false, fmt.Errorf("hash: %w", err)
	}
	same := true
	for _, n := range lc.Nodes {
		nc := client.New([]string{n.HTTPAddr}, client.WithMaxAttempts(1))
		var h client.HashPoint
		for {
			h, err = nc.Hash(ctx, cfg.World, top.Seq)
			if err == nil || ctx.Err() != nil {
				break
			}
			time.Sleep(50 * time.Millisecond) // the replica is still catching up
		}
		nc.Close()
		if err != nil {
			return false, fmt.Errorf("hash on %s: %w", n.ID, err)
		}
		same = same && h.Hash == top.Hash
		fmt.Fprintf(out, "  %s hash at seq %-7d %s\n", n.ID, h.Seq, h.Hash)
	}
	verdict := "EQUAL"
	if !same {
		verdict = "DIFFERENT"
	}
	fmt.Fprintf(out, "  replica hashes      %s at seq %d\n", verdict, top.Seq)

	var total int64
	for i := 0; i < cfg.Players; i++ {
		e, err := c.Entity(ctx, cfg.World, "p"+strconv.Itoa(i), client.Linearizable)
		if client.Code(err) == "not_found" {
			continue
		}
		if err != nil {
			return false, err
		}
		hp, _ := e.Int("hp")
		total -= hp
	}
	acked, maybe := st.Incrs.Load(), st.MaybeIncrs.Load()
	damageOK := acked <= total && total <= acked+maybe
	verdict = "consistent"
	if !damageOK {
		verdict = "MISMATCH"
	}
	fmt.Fprintf(out, "  damage in the world %d; acknowledged %d, unknown outcome %d: %s\n", total, acked, maybe, verdict)
	return same && damageOK, nil
}
