// Package localcluster runs real gsd processes on loopback for the demo,
// process-level tests and the fault-injection suite: each node gets its own
// data directory, random ports, a log file, its own process group and a
// parent-death signal, so nothing outlives the program that started it.
package localcluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/gsd-dev/gsd/internal/freeport"
)

// Options configure a local cluster.
type Options struct {
	Bin   string   // path of the gsd binary
	Dir   string   // base directory; each node uses Dir/<id>
	Nodes int      // how many nodes (the first bootstraps, the others join it)
	Args  []string // extra flags for every node (e.g. raft timeouts)
	Env   []string // extra environment (e.g. GOCOVERDIR=...)
	// Ready bounds how long to wait for a node to answer /readyz.
	Ready time.Duration
}

// Node is one gsd process.
type Node struct {
	ID       string
	HTTPAddr string
	RaftAddr string
	Dir      string
	Log      string

	mu   sync.Mutex
	proc *Proc
}

func (n *Node) current() *Proc {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.proc
}

// Cluster is a set of local gsd processes.
type Cluster struct {
	opts  Options
	Nodes []*Node
}

// FreeAddr returns a loopback address whose port was free a moment ago,
// below the ephemeral range (internal/freeport).
func FreeAddr() (string, error) { return freeport.Addr() }

// Start starts opts.Nodes nodes and waits until each is ready.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	if opts.Nodes < 1 {
		return nil, errors.New("localcluster: need at least one node")
	}
	if opts.Ready <= 0 {
		opts.Ready = 30 * time.Second
	}
	c := &Cluster{opts: opts}
	for i := 0; i < opts.Nodes; i++ {
		n := &Node{ID: "n" + strconv.Itoa(i+1)}
		n.Dir = filepath.Join(opts.Dir, n.ID)
		n.Log = filepath.Join(opts.Dir, n.ID+".log")
		var err error
		if n.HTTPAddr, err = FreeAddr(); err != nil {
			return nil, err
		}
		if n.RaftAddr, err = FreeAddr(); err != nil {
			return nil, err
		}
		c.Nodes = append(c.Nodes, n)
		var join []string
		if i > 0 {
			join = []string{"--join", c.Nodes[0].HTTPAddr}
		}
		if err := c.start(n, join); err != nil {
			c.Stop()
			return nil, err
		}
		if err := c.WaitReady(ctx, i); err != nil {
			c.Stop()
			return nil, err
		}
	}
	return c, nil
}

func (c *Cluster) start(n *Node, extra []string) error {
	if err := os.MkdirAll(c.opts.Dir, 0o755); err != nil {
		return err
	}
	args := append([]string{"--id", n.ID, "--data-dir", n.Dir, "--http-addr", n.HTTPAddr, "--raft-addr", n.RaftAddr}, c.opts.Args...)
	args = append(args, extra...)
	p, err := StartProc(c.opts.Bin, args, c.opts.Env, n.Log, "")
	if err != nil {
		return fmt.Errorf("start %s: %w", n.ID, err)
	}
	n.mu.Lock()
	n.proc = p
	n.mu.Unlock()
	return nil
}

// WaitReady waits until node i answers /readyz with 200.
func (c *Cluster) WaitReady(ctx context.Context, i int) error {
	n := c.Nodes[i]
	if err := WaitReady(ctx, n.current(), n.HTTPAddr, n.Log, c.opts.Ready); err != nil {
		return fmt.Errorf("%s: %w", n.ID, err)
	}
	return nil
}

// Running reports whether the node's process is alive.
func (n *Node) Running() bool { return n.current().Running() }

// PID returns the node's process id (0 when never started).
func (n *Node) PID() int { return n.current().PID() }

// Signal sends sig to node i's process group and, for SIGKILL and SIGTERM,
// waits until the process is gone (SIGKILL after 30 s of SIGTERM).
func (c *Cluster) Signal(i int, sig syscall.Signal) error {
	n := c.Nodes[i]
	if err := n.current().Signal(sig, 30*time.Second); err != nil {
		return fmt.Errorf("signal %s: %w", n.ID, err)
	}
	return nil
}

// Kill SIGKILLs node i.
func (c *Cluster) Kill(i int) error { return c.Signal(i, syscall.SIGKILL) }

// Restart starts node i again on its data directory (no bootstrap, no join)
// and waits until it is ready.
func (c *Cluster) Restart(ctx context.Context, i int) error {
	if c.Nodes[i].Running() {
		return fmt.Errorf("%s is running", c.Nodes[i].ID)
	}
	if err := c.start(c.Nodes[i], nil); err != nil {
		return err
	}
	return c.WaitReady(ctx, i)
}

// Stop sends SIGTERM to every running node and waits for them (SIGKILL
// after 30 s).
func (c *Cluster) Stop() {
	var wg sync.WaitGroup
	for i, n := range c.Nodes {
		if n.Running() {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_ = c.Signal(i, syscall.SIGTERM)
			}()
		}
	}
	wg.Wait()
}

// Addrs returns every node's HTTP address.
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		out[i] = n.HTTPAddr
	}
	return out
}

// Index returns the index of the node with id, or -1.
func (c *Cluster) Index(id string) int {
	for i, n := range c.Nodes {
		if n.ID == id {
			return i
		}
	}
	return -1
}
