package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/gsd-dev/gsd/client"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/store"
)

// reportInterval is how often a node checks that the replicated node table
// holds the versions it reads.
const reportInterval = 5 * time.Second

// reportVersions tells the leader which versions this node reads (the
// store's version gate needs every voter's) until ctx ends: whenever the
// node table lists this node with its addresses but other versions, it
// joins again through its own HTTP address, which forwards to the leader
// and, for a member, only records the report. A node that is not in the
// table yet (joining, or waiting to be added) reports nothing: its join
// adds it first. The leader records its own versions itself.
func reportVersions(ctx context.Context, st *store.Store, c *client.Client, log *slog.Logger) {
	t := time.NewTimer(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		self := st.Self()
		if !st.IsLeader() && needsReport(st.Status().Nodes, self) {
			rctx, cancel := context.WithTimeout(ctx, reportInterval)
			if err := c.Join(rctx, self); err != nil {
				log.Debug("report versions to the leader", "err", err)
			} else {
				log.Info("reported versions to the leader", "versions", self.Versions)
			}
			cancel()
		}
		t.Reset(reportInterval)
	}
}

// needsReport reports whether the node table lists self with its
// addresses but not the versions it reads.
func needsReport(table []fsm.NodeInfo, self fsm.NodeInfo) bool {
	for _, n := range table {
		if n.ID == self.ID {
			return n.RaftAddr == self.RaftAddr && n.HTTPAddr == self.HTTPAddr && n.Versions != self.Versions
		}
	}
	return false
}

// startReporter runs reportVersions through this node's own HTTP address
// and returns the function that stops it and waits for it.
func startReporter(ctx context.Context, o *options, st *store.Store, httpAddr string, log *slog.Logger) (stop func()) {
	opts := o.tls.clientOptions()
	if secret, _ := o.cluster.secret(); secret != nil { // complete has checked it
		opts = append(opts, client.WithClusterSecret(string(secret)))
	}
	c := client.New([]string{httpAddr}, opts...)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		reportVersions(ctx, st, c, log)
	}()
	return func() {
		cancel()
		<-done
		c.Close()
	}
}
