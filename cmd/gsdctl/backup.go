package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
)

func (a *app) backupCmd() *cobra.Command {
	var out string
	var cl clusterBackup
	cmd := &cobra.Command{
		Use:   "backup --out FILE | --cluster DIR",
		Short: "Stream a consistent snapshot of the group into a file (restore it with gsd restore)",
		Long: `Stream a backup of the group from the first --addr node that answers: its
Raft snapshot, a consistent state at one index (worlds, entities, sessions,
player data, bans). Taken on the leader it holds every write acknowledged
before it; on a follower, what that follower applied. It is an admin call:
give the cluster secret when the cluster has one.

The file is written next to FILE and renamed into place once complete, so
FILE is never a partial backup. --timeout bounds getting the answer, not
the transfer. Restore with:

  gsd restore --from FILE --data-dir DIR --id ID --raft-advertise HOST:PORT

With --cluster DIR it backs up every group of a sharded cluster instead:
one snapshot per group (--groups, or the membership group and the shards
of --shard-map), each from that group's leader (give every node's
address, or the map), into DIR with a manifest (manifest.json: the
groups, their files, sizes and SHA-256, and each world's seq and hash in
the snapshot). Restore it on each node with:

  gsd restore --cluster DIR --shard-map MAP --data-dir DIR --id ID`,
		Example: `  gsdctl backup --addr 10.0.0.1:7070 --secret-file /etc/gsd/cluster-secret --out gsd-$(date +%F).backup
  gsdctl backup --secret-file /etc/gsd/cluster-secret --shard-map /etc/gsd/shards.json --cluster /backups/gsd-$(date +%F)`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case out != "" && cl.dir != "":
				return usageError{errors.New("give --out FILE or --cluster DIR, not both")}
			case cl.dir != "":
				return a.backupCluster(cmd.Context(), cl)
			case out == "":
				return usageError{errors.New("--out FILE is required")}
			}
			return a.backup(cmd.Context(), out)
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "file to write the backup to")
	cmd.Flags().StringVar(&cl.dir, "cluster", "", "back up every group into this directory (absent or empty) with a manifest")
	cmd.Flags().UintSliceVar(&cl.groups, "groups", nil, "with --cluster: the groups to back up (default: 0, or those of --shard-map)")
	cmd.Flags().StringVar(&cl.shardMap, "shard-map", "", "with --cluster: gsd's shard map, for its groups and its nodes' addresses")
	return cmd
}

// backup streams a backup into path through a temporary file beside it.
func (a *app) backup(ctx context.Context, path string) (err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	timer := time.AfterFunc(a.timeout, cancel) // until the answer starts
	b, err := a.client().Backup(ctx)
	if !timer.Stop() && err == nil {
		b.Body.Close()
		err = context.DeadlineExceeded
	}
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer b.Body.Close()
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.part")
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	n, err := io.Copy(f, b.Body)
	if err != nil {
		return fmt.Errorf("backup: stream broke after %d of %d bytes: %w", n, b.Size, err)
	}
	if n != b.Size {
		return fmt.Errorf("backup: got %d of %d bytes", n, b.Size)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	fmt.Fprintf(a.stdout, "backup of node %s at index %d (term %d): %d bytes in %s\n", b.Node, b.Index, b.Term, n, path)
	return nil
}
