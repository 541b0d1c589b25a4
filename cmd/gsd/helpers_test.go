package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/client"
	"github.com/gsd-dev/gsd/internal/freeport"
	"github.com/gsd-dev/gsd/internal/syncbuf"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// syncBuffer is a buffer safe for a writer and a reader goroutine.
type syncBuffer = syncbuf.Buffer

// freeAddr returns a loopback address with a port that was free a moment
// ago, below the ephemeral range (internal/freeport).
func freeAddr(t testing.TB) string {
	t.Helper()
	addr, err := freeport.Addr()
	require.NoError(t, err)
	return addr
}

// retryUntilNil calls f every 20 ms until it returns nil and fails the
// test with f's last error when that takes longer than d (require.Eventually
// formats its message before it starts, so it cannot show that error).
func retryUntilNil(t *testing.T, d time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s; the last attempt: %v", what, d, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// actSure acts once on world through c, sending the action again with
// the same seq while the answer is retryable (a leader lost on a loaded
// machine: not_leader, outcome_unknown); the world's idempotency window
// applies it at most once, and a re-sent one answers with its event.
func actSure(ctx context.Context, t *testing.T, c *client.Client, world string, a client.ActionRequest) wire.Event {
	t.Helper()
	var ev wire.Event
	retryUntilNil(t, time.Minute, "act "+world, func() error {
		var err error
		ev, err = c.Act(ctx, world, a)
		if err != nil && !client.IsRetryable(err) {
			t.Fatalf("act %s: %v", world, err)
		}
		return err
	})
	return ev
}

// testNode is a gsd node run in-process by run().
type testNode struct {
	id, dir, http, raft string
	cancel              context.CancelFunc
	done                chan int
	stderr              *syncBuffer
	code                int
	stopped             bool
}

// fastFlags keep elections short so that tests are quick; tests assert
// behaviour, never durations.
// The disk stall detector is off: it exits the process, here the test binary.
var fastFlags = []string{"--heartbeat-timeout", "300ms", "--election-timeout", "300ms", "--commit-timeout", "2ms", "--no-sync", "--shutdown-timeout", "5s", "--disk-stall-timeout", "0"}

// startNode runs gsd on fresh ports (or the given node's, to restart it) in
// dir with extra flags, and stops it when the test ends.
func startNode(t *testing.T, id, dir string, extra ...string) *testNode {
	t.Helper()
	return startNodeAt(t, id, dir, freeAddr(t), freeAddr(t), extra...)
}

func startNodeAt(t *testing.T, id, dir, httpAddr, raftAddr string, extra ...string) *testNode {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	n := &testNode{id: id, dir: dir, http: httpAddr, raft: raftAddr, cancel: cancel, done: make(chan int, 1), stderr: &syncBuffer{}}
	args := append([]string{"--id", id, "--data-dir", dir, "--http-addr", httpAddr, "--raft-addr", raftAddr}, fastFlags...)
	args = append(args, extra...)
	go func() { n.done <- run(ctx, args, &syncBuffer{}, n.stderr) }()
	t.Cleanup(func() {
		n.stop(t)
		if t.Failed() {
			t.Logf("log of node %s:\n%s", n.id, n.stderr.String())
		}
	})
	return n
}

// stop cancels the node and returns its exit code.
func (n *testNode) stop(t *testing.T) int {
	t.Helper()
	if n.stopped {
		return n.code
	}
	n.cancel()
	select {
	case n.code = <-n.done:
	case <-time.After(60 * time.Second):
		t.Fatalf("node %s did not stop; log:\n%s", n.id, n.stderr.String())
	}
	n.stopped = true
	return n.code
}

// exited waits for a node that is expected to fail on its own.
func (n *testNode) exited(t *testing.T) int {
	t.Helper()
	select {
	case n.code = <-n.done:
	case <-time.After(60 * time.Second):
		t.Fatalf("node %s did not exit; log:\n%s", n.id, n.stderr.String())
	}
	n.stopped = true
	return n.code
}

func (n *testNode) client(t testing.TB) *client.Client {
	c := client.New([]string{n.http}, client.WithBackoff(10*time.Millisecond, 200*time.Millisecond))
	t.Cleanup(c.Close)
	return c
}

// waitStatus polls the node's status until ok accepts it.
func (n *testNode) waitStatus(t *testing.T, what string, ok func(client.Status) bool) client.Status {
	t.Helper()
	c := n.client(t)
	var last client.Status
	var lastErr error
	deadline := time.Now().Add(60 * time.Second)
	for !n.hasExited() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		last, lastErr = c.Status(ctx)
		cancel()
		if lastErr == nil && ok(last) {
			return last
		}
		if time.Now().After(deadline) {
			// Evaluated now, not when the wait began: the last answer seen.
			t.Fatalf("node %s: %s: not within 60s; last status %+v, err %v", n.id, what, last, lastErr)
		}
		time.Sleep(20 * time.Millisecond) // poll interval
	}
	t.Fatalf("node %s exited (%d) while waiting: %s; the end of its log:\n%s", n.id, n.code, what, n.logTail(40))
	return last
}

// logTail returns the last k lines of the node's log: the reason a node
// exited, next to the failure (the whole log, printed at cleanup, can be
// cut off by whatever shows a long test output).
func (n *testNode) logTail(k int) string {
	lines := strings.Split(strings.TrimRight(n.stderr.String(), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-k):], "\n")
}

func (n *testNode) hasExited() bool {
	if n.stopped {
		return true
	}
	select {
	case n.code = <-n.done:
		n.stopped = true
		return true
	default:
		return false
	}
}

func (n *testNode) waitLeader(t *testing.T) client.Status {
	t.Helper()
	return n.waitStatus(t, "knows a leader", func(s client.Status) bool { return s.Leader != "" && s.LeaderHTTP != "" })
}

func requireContains(t *testing.T, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		require.True(t, strings.Contains(s, sub), "want %q in:\n%s", sub, s)
	}
}
