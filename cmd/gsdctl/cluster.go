package main

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/gsd-dev/gsd/client"
	"github.com/gsd-dev/gsd/wire"
	"github.com/spf13/cobra"
)

func (a *app) statusCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show a node's view of its cluster",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := a.context(cmd)
			defer cancel()
			st, err := a.client().Status(ctx)
			if err != nil {
				return err
			}
			if a.output == "json" {
				return a.printJSON(st)
			}
			return a.printStatus(st)
		},
	}
}

func (a *app) printStatus(st client.Status) error {
	leader := st.Leader
	if leader == "" {
		leader = "(none)"
	} else if st.LeaderHTTP != "" {
		leader += " (" + st.LeaderHTTP + ")"
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tSTATE\tTERM\tAPPLIED\tCOMMIT\tLAST\tREGION\tLEADER")
	fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%s\t%s\n", st.ID, st.State, st.Term, st.AppliedIndex, st.CommitIndex, st.LastIndex, st.Region, leader)
	fmt.Fprintln(tw)
	nodes := map[string]wire.NodeInfo{}
	for _, n := range st.Nodes {
		nodes[n.ID] = n
	}
	fmt.Fprintln(tw, "SERVER\tSUFFRAGE\tRAFT\tHTTP\tREGION")
	for _, s := range st.Servers {
		n := nodes[s.ID]
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.ID, s.Suffrage, s.Address, dash(n.HTTPAddr), dash(n.Region))
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (a *app) joinCmd() *cobra.Command {
	var region string
	cmd := &cobra.Command{
		Use:   "join ID RAFTADDR HTTPADDR",
		Short: "Add a node to the cluster as a voter",
		Long: `Add a node to the cluster as a voter. gsdctl first asks the node at
HTTPADDR what it reads (GET /v1/status, up to 2 s) and sends that with the
join, as the node's own --join does: the group refuses (version_gate) a
node that may not read its log. A node that does not answer as ID joins
as the oldest binary would, with a warning.`,
		Args: cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := a.context(cmd)
			defer cancel()
			n := wire.NodeInfo{ID: args[0], RaftAddr: args[1], HTTPAddr: args[2], Region: region}
			// The join carries what the node reads, as its own --join
			// does: the group refuses a node that may not read its log
			// (version_gate), and one that reports nothing counts as the
			// oldest binary.
			sctx, scancel := context.WithTimeout(ctx, joinStatusWait)
			st, err := a.clientFor([]string{n.HTTPAddr}).Status(sctx)
			scancel()
			if err == nil && st.ID == n.ID {
				n.Versions = st.Versions
			} else {
				fmt.Fprintf(cmd.ErrOrStderr(), "gsdctl: could not ask node %s at %s what it reads (%s): joining it as the oldest binary\n", n.ID, n.HTTPAddr, joinStatusProblem(st, n.ID, err))
			}
			if err := a.client().Join(ctx, n); err != nil {
				return err
			}
			return a.printJSON(ok)
		},
	}
	cmd.Flags().StringVar(&region, "region", "", "the node's region")
	return cmd
}

// joinStatusWait bounds join's question to the joining node (the client
// retries a refused connection until its context ends): the join itself
// keeps the rest of --timeout.
const joinStatusWait = 2 * time.Second

// joinStatusProblem says why a joining node's status gave no versions.
func joinStatusProblem(st wire.Status, id string, err error) string {
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("it answers as node %q, not %q", st.ID, id)
}

func (a *app) removeCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "remove ID",
		Short: "Remove a node from the cluster",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := a.context(cmd)
			defer cancel()
			if err := a.client().Remove(ctx, args[0]); err != nil {
				return err
			}
			return a.printJSON(ok)
		},
	}
}

func (a *app) transferLeaderCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "transfer-leader",
		Short: "Make the leader hand leadership to another voter",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := a.context(cmd)
			defer cancel()
			if err := a.client().TransferLeadership(ctx); err != nil {
				return err
			}
			return a.printJSON(ok)
		},
	}
}

func (a *app) snapshotCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "snapshot",
		Short: "Make the node at the first answering --addr take a snapshot",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := a.context(cmd)
			defer cancel()
			idx, err := a.client().Snapshot(ctx)
			if err != nil {
				return err
			}
			return a.printJSON(map[string]uint64{"index": idx})
		},
	}
}
