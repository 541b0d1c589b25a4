package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/gsd-dev/gsd/client"
	"github.com/gsd-dev/gsd/internal/credential"
	"github.com/spf13/cobra"
)

// envClusterSecret holds the cluster secret when --secret-file is not given.
const envClusterSecret = "GSD_CLUSTER_SECRET"

// loadSecret reads the cluster secret of --secret-file, else of the
// environment (none: the admin commands send no credential).
func (a *app) loadSecret() error {
	if a.secretFile != "" {
		b, err := credential.LoadClusterSecret(a.secretFile)
		if err != nil {
			return usageError{err}
		}
		a.secret = string(b)
		return nil
	}
	a.secret = strings.TrimSpace(os.Getenv(envClusterSecret))
	return nil
}

func (a *app) drainCmd() *cobra.Command {
	var (
		to   string
		undo bool
	)
	cmd := &cobra.Command{
		Use:   "drain NODE",
		Short: "Move a node's players to other nodes and refuse new ones (--undo: take them again)",
		Long: `drain makes NODE (a node id, resolved through --addr, or its HTTP address)
refuse new play connections and move each of its play connections to another
node: the client gets a signed transfer ticket and resumes there without
losing an action or an event. It returns once every connection moved or
ended. Drain a node before stopping it for maintenance; --undo makes it take
play connections again.`,
		Example: `  gsdctl --addr 10.0.0.1:7070 --secret-file cluster.secret drain n2
  gsdctl drain 10.0.0.2:7070 --to n3
  gsdctl drain n2 --undo`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := a.context(cmd)
			defer cancel()
			addr := args[0]
			if !strings.Contains(addr, ":") {
				st, err := a.client().Status(ctx)
				if err != nil {
					return err
				}
				addr = ""
				for _, n := range st.Nodes {
					if n.ID == args[0] {
						addr = n.HTTPAddr
					}
				}
				if addr == "" {
					return usageError{fmt.Errorf("no node %q in the cluster (give its HTTP address instead)", args[0])}
				}
			}
			// Only that node: a failover would drain another one.
			c := a.clientFor([]string{addr})
			defer c.Close()
			var res client.DrainResult
			var err error
			if undo {
				if to != "" {
					return usageError{errors.New("--to and --undo do not go together")}
				}
				res, err = c.Undrain(ctx)
			} else {
				res, err = c.Drain(ctx, to)
			}
			if err != nil {
				return err
			}
			return a.printJSON(res)
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "node id to move the players to (default: spread over all other nodes)")
	cmd.Flags().BoolVar(&undo, "undo", false, "take play connections again")
	return cmd
}
