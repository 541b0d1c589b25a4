package main

import (
	"errors"
	"fmt"
	"net"
	"os"

	"github.com/gsd-dev/gsd/store"
	"github.com/spf13/cobra"
)

// restoreOptions are gsd restore's flags: where the backup goes and the
// identity the node will run with there.
type restoreOptions struct {
	from          string
	dataDir       string
	id            string
	raftAddr      string
	raftAdvertise string
	config        string
	cluster       string // a cluster backup's directory (restore_cluster.go)
	shardMap      string
}

// restoreCmd is `gsd restore`: the daemon owns its data directory, so it
// (not gsdctl) writes a backup into one.
func restoreCmd() *cobra.Command {
	o := &restoreOptions{}
	cmd := &cobra.Command{
		Use:   "restore --from FILE | --cluster DIR --data-dir DIR",
		Short: "Restore a backup (gsdctl backup) into an empty data directory",
		Long: `Restore writes a backup taken with gsdctl backup into an empty data
directory, as the state of a new one-node cluster whose only voter is this
node (--id at --raft-advertise). Start gsd on that directory with the same
--id and --raft-advertise: it loads the backup, elects itself and serves
the same worlds with the same state hashes; add more nodes by starting
them empty with --join. The event archive starts empty. A directory that
already holds Raft state is refused.

--data-dir, --id, --raft-addr and --raft-advertise also come from
GSD_* variables and the --config file, as for the daemon.

With --cluster DIR (gsdctl backup --cluster) and the cluster's
--shard-map it restores every group the map makes this node a voter of,
into groups/<id>/, with all the group's voters (its raft address is the
map's); run it on every node of the map, then start them all with the
map and no --join. Each group's file is checked against the manifest
(length, SHA-256, every world's seq and hash) before anything is written.`,
		Example: `  gsd restore --from gsd-2026-12-06.backup --data-dir /var/lib/gsd --id gsd-1 --raft-advertise 10.0.0.1:7071
  gsd restore --cluster /backups/gsd-2026-12-06 --shard-map /etc/gsd/shards.json --data-dir /var/lib/gsd --id gsd-1`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path := o.config
			if path == "" {
				path = os.Getenv(envName("config"))
			}
			if err := applyConfigKeys(cmd.Flags(), path, os.LookupEnv, false); err != nil {
				return usageError{err}
			}
			cfg, err := o.restoreConfig()
			if err != nil {
				return usageError{err}
			}
			if o.cluster != "" {
				lines, err := o.restoreCluster(cfg)
				if err != nil {
					return err
				}
				for _, l := range lines {
					fmt.Fprintln(cmd.OutOrStdout(), l)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "start it with its usual flags (the same --shard-map, no --join): gsd --data-dir %s --id %s ...\n", cfg.Dir, cfg.ID)
				return nil
			}
			f, err := os.Open(o.from)
			if err != nil {
				return fmt.Errorf("restore: %w", err)
			}
			defer f.Close()
			index, err := store.Restore(cfg, f)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "restored %s (index %d) into %s as node %s at %s\nstart it with: gsd --data-dir %s --id %s --raft-advertise %s\n",
				o.from, index, cfg.Dir, cfg.ID, cfg.Advertise, cfg.Dir, cfg.ID, cfg.Advertise)
			return nil
		},
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	f := cmd.Flags()
	f.StringVar(&o.from, "from", "", "the backup file (gsdctl backup --out)")
	f.StringVar(&o.dataDir, "data-dir", "./gsd-data", "the new node's data directory (absent or empty)")
	f.StringVar(&o.id, "id", "", `the node's id (default: hostname + "-" + raft port, as gsd's)`)
	f.StringVar(&o.raftAddr, "raft-addr", "127.0.0.1:7071", "the node's Raft listen address")
	f.StringVar(&o.raftAdvertise, "raft-advertise", "", "the Raft address peers will dial (default: --raft-addr)")
	f.StringVar(&o.config, "config", "", "gsd's TOML config file to take the flags above from (default: $GSD_CONFIG)")
	f.StringVar(&o.cluster, "cluster", "", "a cluster backup's directory (gsdctl backup --cluster), in place of --from")
	f.StringVar(&o.shardMap, "shard-map", "", "with --cluster: the cluster's shard map (the node's groups, voters and raft address)")
	return cmd
}

func (o *restoreOptions) restoreConfig() (store.RestoreConfig, error) {
	switch {
	case o.from != "" && o.cluster != "":
		return store.RestoreConfig{}, errClusterAndFrom
	case o.from == "" && o.cluster == "":
		return store.RestoreConfig{}, errors.New("--from FILE is required")
	}
	if o.dataDir == "" {
		return store.RestoreConfig{}, errors.New("--data-dir must not be empty")
	}
	_, port, err := net.SplitHostPort(o.raftAddr)
	if err != nil {
		return store.RestoreConfig{}, fmt.Errorf("--raft-addr %q: %v", o.raftAddr, err)
	}
	adv := o.raftAdvertise
	if adv == "" {
		adv = o.raftAddr
	}
	if _, _, err := net.SplitHostPort(adv); err != nil {
		return store.RestoreConfig{}, fmt.Errorf("--raft-advertise %q: %v", adv, err)
	}
	id := o.id
	if id == "" {
		id = defaultNodeID(port)
	}
	return store.RestoreConfig{Dir: o.dataDir, ID: id, Advertise: adv, FSM: store.DefaultConfig().FSM}, nil
}

// defaultNodeID is gsd's default node id: hostname + "-" + raft port.
func defaultNodeID(port string) string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "gsd"
	}
	return host + "-" + port
}
