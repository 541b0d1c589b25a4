package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/gsd-dev/gsd/internal/freeport"
	"github.com/gsd-dev/gsd/loadgen"
	"github.com/gsd-dev/gsd/spectator/relay"
	"github.com/spf13/pflag"
)

// spectateOptions are spectator-influx's step mode: spectators watching
// in steps, through relays run as processes of their own.
type spectateOptions struct {
	steps        string // --spectator-steps, "" for none
	relayProcs   int
	upstreamForm string   // --relay-upstream-form
	relayArgs    []string // --relay-arg
}

// addSpectateFlags registers the step mode's flags.
func addSpectateFlags(f *pflag.FlagSet, o *spectateOptions) {
	f.StringVar(&o.steps, "spectator-steps", "", "spectator-influx: measure with each of these numbers of spectators watching, in one run (e.g. 0,1000,10000): they watch the watch route (keyframe, then deltas), and the report compares each step with the first per 1,000 spectators")
	f.StringVar(&o.upstreamForm, "relay-upstream-form", relay.UpstreamFormLean, "spectator-influx with --relay-procs: the relays' --upstream-form (lean or whole), to compare the voters' bytes per relay")
	f.StringArrayVar(&o.relayArgs, "relay-arg", nil, "spectator-influx with --relay-procs: extra flag for every relay process, repeatable (e.g. --relay-arg=--cpuprofile=relay.pprof with one relay: a CPU profile of it during the run)")
	f.IntVar(&o.relayProcs, "relay-procs", 0, "spectator-influx: put the spectators on this many relays run as processes of their own (gsdctl relay run), sampled apart from the load generator; implies --spectator-steps 0,<--spectators> unless given")
}

// stepped reports whether spectator-influx runs in steps.
func (o spectateOptions) stepped() bool { return o.steps != "" || o.relayProcs > 0 }

// runSpectatorSteps runs spectator-influx in steps.
func runSpectatorSteps(ctx context.Context, t *loadgen.Target, p loadgen.LoadParams, o benchOptions) (*loadgen.Result, error) {
	so := o.spectate
	steps := []int{0, o.spectators}
	if so.steps != "" {
		var err error
		if steps, err = loadgen.ParseSteps(so.steps); err != nil {
			return nil, usageError{err}
		}
	}
	if so.relayProcs > 0 && o.spectatorRelays > 0 {
		return nil, usageError{errors.New("--relays and --relay-procs are one or the other")}
	}
	// Every spectator is a connection here (and on a relay): 10,000 of
	// them are beyond the usual soft limit.
	if err := raiseNoFile(); err != nil {
		return nil, err
	}
	sp := loadgen.SpectatorStepsParams{Steps: steps, Ramp: o.ramp, OnFollowers: !o.spectatorsAll, Nodes: o.spectatorNodes}
	switch {
	case so.relayProcs > 0:
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("relay processes: %w", err)
		}
		sp.Relays = relayProcs(exe, so.relayProcs, slices.Max(steps), append([]string{"--upstream-form", so.upstreamForm}, so.relayArgs...)...)
	case o.spectatorRelays > 0:
		start := benchRelays(o.spectatorRelays)
		sp.Relays = func(ctx context.Context, upstreams []string) (loadgen.RelaySet, error) {
			addrs, stop, err := start(ctx, upstreams)
			return loadgen.RelaySet{Addrs: addrs, Stop: stop}, err
		}
	}
	return loadgen.SpectatorSteps(ctx, t, p, sp, o.tm)
}

// raiseNoFile raises this process's open-file limit to its hard limit
// (relay processes started later inherit it).
func raiseNoFile() error {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return fmt.Errorf("open-file limit: %w", err)
	}
	if l.Cur < l.Max {
		l.Cur = l.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
			return fmt.Errorf("raise the open-file limit: %w", err)
		}
	}
	return nil
}

// relayStartTimeout bounds a relay process's start (until /healthz).
const relayStartTimeout = 15 * time.Second

// relayProcs returns what starts n relay processes (exe relay run), each
// following one of the upstreams in turn on a free loopback port and
// admitting viewers spectators, with the relay flags args; they are stopped
// by their pids.
func relayProcs(exe string, n, viewers int, args ...string) func(ctx context.Context, upstreams []string) (loadgen.RelaySet, error) {
	return func(ctx context.Context, upstreams []string) (loadgen.RelaySet, error) {
		var rs loadgen.RelaySet
		if len(upstreams) == 0 {
			return rs, errors.New("relays: no node to follow")
		}
		var procs []*relayProc
		rs.Stop = func() {
			for _, p := range procs {
				p.stop()
			}
		}
		for i := range n {
			p, err := startRelayProc(ctx, exe, "http://"+upstreams[i%len(upstreams)], max(viewers, 1), args...)
			if err != nil {
				rs.Stop()
				return loadgen.RelaySet{}, fmt.Errorf("relay %d: %w", i, err)
			}
			procs = append(procs, p)
			pid := p.cmd.Process.Pid
			rs.Addrs = append(rs.Addrs, p.addr)
			rs.Procs = append(rs.Procs, loadgen.Proc{Name: "relay-" + strconv.Itoa(i), PID: func() int { return pid }})
		}
		return rs, nil
	}
}

// relayProc is one relay process.
type relayProc struct {
	cmd    *exec.Cmd
	addr   string
	out    *lockedBuf
	exited chan struct{}
}

// startRelayProc starts exe relay run following upstream (with the flags
// args) and waits until it serves.
func startRelayProc(ctx context.Context, exe, upstream string, viewers int, args ...string) (*relayProc, error) {
	addr, err := freeport.Addr()
	if err != nil {
		return nil, err
	}
	p := &relayProc{addr: addr, out: &lockedBuf{}, exited: make(chan struct{})}
	p.cmd = exec.Command(exe, append([]string{"relay", "run", "--upstream", upstream, "--listen", addr,
		"--max-viewers", strconv.Itoa(viewers)}, args...)...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.exited)
	}()
	hc := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(relayStartTimeout)
	for {
		if err := healthy(ctx, hc, addr); err == nil {
			return p, nil
		} else if time.Now().After(deadline) || ctx.Err() != nil {
			p.stop()
			return nil, fmt.Errorf("not serving on %s: %w\n%s", addr, err, p.out.String())
		}
		select {
		case <-p.exited:
			return nil, fmt.Errorf("exited: %s\n%s", p.cmd.ProcessState, p.out.String())
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// healthy asks addr's /healthz.
func healthy(ctx context.Context, hc *http.Client, addr string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/healthz", nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthz: HTTP %d", resp.StatusCode)
	}
	return nil
}

// stop ends the relay by its pid: SIGTERM (it closes its viewers), then
// SIGKILL if it has not exited within a few seconds.
func (p *relayProc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// lockedBuf holds a relay process's output: its copier writes while a
// failed start reads it.
type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
