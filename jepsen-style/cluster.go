package jepsen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gsd-dev/gsd/client"
	"github.com/gsd-dev/gsd/internal/localcluster"
)

// BuildGSD builds cmd/gsd with coverage (and extra build tags) into dir.
func BuildGSD(dir string, tags ...string) (string, error) {
	name := "gsd"
	args := []string{"build", "-cover", "-coverpkg=github.com/gsd-dev/gsd/..."}
	if len(tags) > 0 {
		name += "-" + tags[0]
		args = append(args, "-tags", tags[0])
	}
	bin := filepath.Join(dir, name)
	args = append(args, "-o", bin, "github.com/gsd-dev/gsd/cmd/gsd")
	out, err := exec.Command("go", args...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go %v: %v\n%s", args, err, out)
	}
	return bin, nil
}

// ClusterConfig describes the processes of one run.
type ClusterConfig struct {
	Bin      string   // gsd binary
	Dir      string   // the run's output directory (data dirs, logs, peer files)
	Voters   int      // nodes started at the beginning (n1 bootstraps)
	Spares   int      // node slots created but not started (for replace)
	Args     []string // extra flags for every node
	CoverDir string   // GOCOVERDIR of the processes
	// Shards > 1 runs the voters with a shard map (gsd --shard-map) of
	// that many shards, groups 0..Shards-1, each with every voter; Worlds
	// places worlds on them by name (the others by hash).
	Shards int
	Worlds map[string]uint64
}

// Node is one gsd process slot.
type Node struct {
	ID       string
	Index    int
	HTTP     string // real listen address (the harness's own control traffic)
	Raft     string
	DataDir  string
	LogPath  string
	PeerFile string
	Ingress  *Proxy // clients and forwarded requests reach the node through it

	mu      sync.Mutex
	proc    *localcluster.Proc
	direct  *client.Client
	started bool
}

func (n *Node) current() *localcluster.Proc {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.proc
}

// Cluster is a set of gsd processes whose every link goes through a Proxy.
type Cluster struct {
	cfg   ClusterConfig
	Nodes []*Node
	// Links[src][dst] carries src's Raft traffic to dst.
	Links [][]*Proxy
}

// NewCluster allocates ports, proxies and peer files for Voters+Spares
// nodes and starts the voters: n1 bootstraps, the others join it. Ports are
// picked free and then bound by the child, so another process can take one
// in between; a start that fails only because a port was taken is retried
// from scratch with new ports (twice at most).
func NewCluster(ctx context.Context, cfg ClusterConfig) (*Cluster, error) {
	for attempt := 1; ; attempt++ {
		c, err := newCluster(ctx, cfg)
		if err == nil || attempt == 3 || !portTaken(cfg.Dir) {
			return c, err
		}
		dirs, _ := filepath.Glob(filepath.Join(cfg.Dir, "n*-data"))
		for _, d := range dirs {
			_ = os.RemoveAll(d)
		}
		logs, _ := filepath.Glob(filepath.Join(cfg.Dir, "n*.log"))
		for _, l := range logs {
			_ = os.Rename(l, l+".port-taken-"+strconv.Itoa(attempt))
		}
	}
}

// portTaken reports whether a node log of a failed start says a port was in use.
func portTaken(dir string) bool {
	logs, _ := filepath.Glob(filepath.Join(dir, "n*.log"))
	for _, l := range logs { // only this attempt's: earlier ones were renamed
		if b, err := os.ReadFile(l); err == nil && strings.Contains(string(b), "address already in use") {
			return true
		}
	}
	return false
}

func newCluster(ctx context.Context, cfg ClusterConfig) (*Cluster, error) {
	c := &Cluster{cfg: cfg}
	total := cfg.Voters + cfg.Spares
	for i := range total {
		n := &Node{ID: "n" + strconv.Itoa(i+1), Index: i}
		var err error
		if n.HTTP, err = localcluster.FreeAddr(); err != nil {
			return nil, err
		}
		if n.Raft, err = localcluster.FreeAddr(); err != nil {
			return nil, err
		}
		n.DataDir = filepath.Join(cfg.Dir, n.ID+"-data")
		n.LogPath = filepath.Join(cfg.Dir, n.ID+".log")
		n.PeerFile = filepath.Join(cfg.Dir, n.ID+"-peers.json")
		if n.Ingress, err = NewProxy("client->"+n.ID, n.HTTP); err != nil {
			return nil, err
		}
		n.direct = client.New([]string{n.HTTP}, client.WithMaxAttempts(1), client.WithAttemptTimeout(2*time.Second))
		c.Nodes = append(c.Nodes, n)
	}
	c.Links = make([][]*Proxy, total)
	for s := range total {
		c.Links[s] = make([]*Proxy, total)
		peers := map[string]string{}
		for d := range total {
			if s == d {
				continue
			}
			p, err := NewProxy(c.Nodes[s].ID+"->"+c.Nodes[d].ID, c.Nodes[d].Raft)
			if err != nil {
				c.Close()
				return nil, err
			}
			c.Links[s][d] = p
			peers[c.Nodes[d].ID] = p.Addr()
		}
		b, _ := json.Marshal(peers)
		if err := os.WriteFile(c.Nodes[s].PeerFile, b, 0o644); err != nil {
			c.Close()
			return nil, err
		}
	}
	if cfg.Shards > 1 {
		if err := c.writeShardMap(); err != nil {
			c.Close()
			return nil, err
		}
	}
	for i := range cfg.Voters {
		var join []string
		if i > 0 {
			join = []string{c.Nodes[0].Ingress.Addr()}
		}
		if err := c.Start(i, join); err != nil {
			c.Close()
			return nil, err
		}
		if err := c.WaitReady(ctx, i); err != nil {
			c.Close()
			return nil, err
		}
	}
	if err := c.WaitMembers(ctx, cfg.Voters); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// Start runs node i on its data dir, joining through join when given.
func (c *Cluster) Start(i int, join []string) error {
	n := c.Nodes[i]
	args := []string{"--id", n.ID, "--data-dir", n.DataDir, "--http-addr", n.HTTP,
		"--http-advertise", n.Ingress.Addr(), "--raft-addr", n.Raft, "--peer-addr-file", n.PeerFile,
		"--heartbeat-timeout", "400ms", "--election-timeout", "400ms", "--apply-timeout", "3s",
		"--shutdown-timeout", "5s", "--join-timeout", "60s"}
	if c.cfg.Shards > 1 {
		args = append(args, "--shard-map", c.shardMapPath())
	}
	args = append(args, c.cfg.Args...)
	for _, j := range join {
		args = append(args, "--join", j)
	}
	p, err := localcluster.StartProc(c.cfg.Bin, args, []string{"GOCOVERDIR=" + c.cfg.CoverDir}, n.LogPath,
		fmt.Sprintf("=== harness: start %s %v", n.ID, args))
	if err != nil {
		return fmt.Errorf("start %s: %w", n.ID, err)
	}
	n.mu.Lock()
	n.proc, n.started = p, true
	n.mu.Unlock()
	return nil
}

// shardMapPath is where a sharded cluster's map is written.
func (c *Cluster) shardMapPath() string { return filepath.Join(c.cfg.Dir, "shard-map.json") }

// writeShardMap writes the map of a sharded cluster: the voters with their
// real Raft addresses (each node dials its peers through its peer file,
// so every group's traffic goes through the proxies) and HTTP addresses
// through their ingress proxies; every shard has every voter.
func (c *Cluster) writeShardMap() error {
	type node struct {
		Raft string `json:"raft"`
		HTTP string `json:"http"`
	}
	type shard struct {
		ID     uint64   `json:"id"`
		Voters []string `json:"voters"`
	}
	m := struct {
		Membership uint64            `json:"membership"`
		Nodes      map[string]node   `json:"nodes"`
		Shards     []shard           `json:"shards"`
		Worlds     map[string]uint64 `json:"worlds,omitempty"`
	}{Nodes: map[string]node{}, Worlds: c.cfg.Worlds}
	var voters []string
	for _, n := range c.Nodes[:c.cfg.Voters] {
		m.Nodes[n.ID] = node{Raft: n.Raft, HTTP: n.Ingress.Addr()}
		voters = append(voters, n.ID)
	}
	for id := range uint64(c.cfg.Shards) {
		m.Shards = append(m.Shards, shard{ID: id, Voters: voters})
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(c.shardMapPath(), b, 0o644)
}

// Running reports whether node i's process is alive (paused counts).
func (c *Cluster) Running(i int) bool { return c.Nodes[i].current().Running() }

// Paused reports whether node i is SIGSTOPped.
func (c *Cluster) Paused(i int) bool { return c.Nodes[i].current().Paused() }

// signal sends sig to node i's process group; SIGKILL and SIGTERM wait
// until it is gone (SIGKILL after 10 s of SIGTERM).
func (c *Cluster) signal(i int, sig syscall.Signal) error {
	if err := c.Nodes[i].current().Signal(sig, 10*time.Second); err != nil {
		return fmt.Errorf("signal %s: %w", c.Nodes[i].ID, err)
	}
	return nil
}

// Kill SIGKILLs node i and waits until it is gone.
func (c *Cluster) Kill(i int) error { return c.signal(i, syscall.SIGKILL) }

// Pause SIGSTOPs node i.
func (c *Cluster) Pause(i int) error { return c.signal(i, syscall.SIGSTOP) }

// Resume SIGCONTs node i.
func (c *Cluster) Resume(i int) error { return c.signal(i, syscall.SIGCONT) }

// Wipe removes node i's data directory (the node must be down).
func (c *Cluster) Wipe(i int) error {
	if c.Running(i) {
		return fmt.Errorf("%s is running", c.Nodes[i].ID)
	}
	return os.RemoveAll(c.Nodes[i].DataDir)
}

// Status asks node i directly for its view (no proxy, one attempt).
func (c *Cluster) Status(ctx context.Context, i int) (client.Status, error) {
	return c.Nodes[i].direct.Status(ctx)
}

// Direct returns a single-attempt client that talks to node i without a proxy.
func (c *Cluster) Direct(i int) *client.Client { return c.Nodes[i].direct }

// WaitReady polls node i's /readyz until it answers 200.
func (c *Cluster) WaitReady(ctx context.Context, i int) error {
	n := c.Nodes[i]
	if err := localcluster.WaitReady(ctx, n.current(), n.HTTP, n.LogPath, 60*time.Second); err != nil {
		return fmt.Errorf("%s: %w", n.ID, err)
	}
	return nil
}

// Leader returns the index of the node that claims leadership with the
// highest term among the live, unpaused nodes, or -1.
func (c *Cluster) Leader(ctx context.Context) int {
	best, term := -1, uint64(0)
	for i := range c.Nodes {
		if !c.Running(i) || c.Paused(i) {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		s, err := c.Status(cctx, i)
		cancel()
		if err == nil && s.State == "leader" && s.Term >= term {
			best, term = i, s.Term
		}
	}
	return best
}

// WaitLeader polls until some node leads.
func (c *Cluster) WaitLeader(ctx context.Context) (int, error) {
	l := -1
	err := poll(ctx, 60*time.Second, func() error {
		if l = c.Leader(ctx); l < 0 {
			return errors.New("no leader")
		}
		return nil
	})
	return l, err
}

// WaitMembers polls until the leader's configuration has want voters and
// every live node is ready.
func (c *Cluster) WaitMembers(ctx context.Context, want int) error {
	return poll(ctx, 60*time.Second, func() error {
		l := c.Leader(ctx)
		if l < 0 {
			return errors.New("no leader")
		}
		s, err := c.Status(ctx, l)
		if err != nil {
			return err
		}
		if len(s.Servers) != want {
			return fmt.Errorf("leader %s has %d servers, want %d", s.ID, len(s.Servers), want)
		}
		return nil
	})
}

// Members returns the ids in the leader's configuration.
func (c *Cluster) Members(ctx context.Context) ([]string, error) {
	l, err := c.WaitLeader(ctx)
	if err != nil {
		return nil, err
	}
	s, err := c.Status(ctx, l)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, sv := range s.Servers {
		ids = append(ids, sv.ID)
	}
	return ids, nil
}

// IndexOf returns the slot of node id, or -1.
func (c *Cluster) IndexOf(id string) int {
	for i, n := range c.Nodes {
		if n.ID == id {
			return i
		}
	}
	return -1
}

// IngressAddrs returns the client-facing proxy addresses of the nodes that
// were ever started.
func (c *Cluster) IngressAddrs() []string {
	var out []string
	for _, n := range c.Nodes {
		n.mu.Lock()
		if n.started {
			out = append(out, n.Ingress.Addr())
		}
		n.mu.Unlock()
	}
	return out
}

// HealNetwork clears every fault on every proxy.
func (c *Cluster) HealNetwork() {
	for _, n := range c.Nodes {
		n.Ingress.Heal()
	}
	for s := range c.Links {
		for _, p := range c.Links[s] {
			if p != nil {
				p.Heal()
			}
		}
	}
}

// LinkFaults sets the faults of src→dst Raft traffic in direction d.
func (c *Cluster) LinkFaults(src, dst int, d Dir, f Faults) { c.Links[src][dst].Set(d, f) }

// Cut blackholes the Raft links between a and b in both directions.
func (c *Cluster) Cut(a, b int) {
	for _, pr := range [][2]int{{a, b}, {b, a}} {
		c.Links[pr[0]][pr[1]].Set(Up, Faults{Blackhole: true})
		c.Links[pr[0]][pr[1]].Set(Down, Faults{Blackhole: true})
	}
}

// Close stops every process (SIGCONT, then SIGTERM so coverage is written,
// SIGKILL after 10s) and every proxy.
func (c *Cluster) Close() {
	var wg sync.WaitGroup
	for i := range c.Nodes {
		if c.Running(i) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_ = c.Resume(i)
				_ = c.signal(i, syscall.SIGTERM)
			}()
		}
	}
	wg.Wait()
	for _, n := range c.Nodes {
		n.Ingress.Close()
		n.direct.Close()
	}
	for s := range c.Links {
		for _, p := range c.Links[s] {
			if p != nil {
				p.Close()
			}
		}
	}
}

// poll calls f until it returns nil, ctx ends or limit passes.
func poll(ctx context.Context, limit time.Duration, f func() error) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	var err error
	for {
		if err = f(); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-t.C:
		}
	}
}

// FailpointFile is the control file gsd built with -tags gsd_failpoints
// polls in its data dir (store.FailpointFile; names in store/failpoint.go).
const FailpointFile = "failpoints"

// SetFailpoints writes node i's failpoint control file: one `name=action`
// per line (empty: all off). The node applies it within ~50 ms.
func (c *Cluster) SetFailpoints(i int, lines ...string) error {
	n := c.Nodes[i]
	if err := os.MkdirAll(n.DataDir, 0o700); err != nil {
		return err
	}
	tmp := filepath.Join(n.DataDir, FailpointFile+".tmp")
	body := ""
	for _, l := range lines {
		body += l + "\n"
	}
	if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(n.DataDir, FailpointFile))
}

// ClearFailpoints turns every failpoint off on every node slot.
func (c *Cluster) ClearFailpoints() {
	for _, n := range c.Nodes {
		_ = os.Remove(filepath.Join(n.DataDir, FailpointFile))
	}
}

// WaitExit waits up to d for node i's process to exit; it reports whether
// it did.
func (c *Cluster) WaitExit(i int, d time.Duration) bool {
	return c.Nodes[i].current().WaitExit(d)
}
