// Command gsd runs one node of a gsd shard: the Raft-replicated store and
// its HTTP API.
//
// With an empty data directory and no --join it bootstraps a one-node
// cluster, so `go run ./cmd/gsd` is a working store. With --join it starts
// empty and asks the cluster (any member; followers forward to the leader)
// to add it. A restart on existing data needs neither: the node rejoins its
// cluster from its own state. SIGTERM or SIGINT shut it down gracefully.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	// After the first signal starts the graceful shutdown, a second one
	// kills the process.
	context.AfterFunc(ctx, stop)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
