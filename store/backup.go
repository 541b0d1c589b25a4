package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	bolt "go.etcd.io/bbolt"
)

// Backup and restore (issue 16). A backup is the group's Raft snapshot as
// this node takes it: the FSM's snapshot bytes (fsm.Snapshot.WriteTo), a
// consistent state at one applied index, which also covers sessions, player
// data, bans and the node table. Restore writes such bytes into an empty
// data directory as the Raft snapshot of a new one-voter group, so the
// daemon started on it restores its FSM from it, elects itself and serves
// the same worlds with the same state hashes; further nodes join it empty.
// The event archive starts empty: events before the backup are not held
// (a subscription from before them gets ErrArchiveGap).

// ErrDataDirInUse reports a restore into a data directory with Raft state.
var ErrDataDirInUse = errors.New("gsd/store: data directory already holds raft state")

// Backup is a snapshot being streamed out.
type Backup struct {
	// Index and Term are the Raft position the snapshot reflects.
	Index, Term uint64
	// Size is the length of Body in bytes.
	Size int64
	// Body is the snapshot; the caller closes it.
	Body io.ReadCloser
}

// Backup takes a snapshot of this node's state and opens it for reading.
// On the leader it first waits until everything committed before the call
// is applied (a read barrier), so the backup holds every write acknowledged
// before it; on a follower it reflects what the follower has applied.
// Taking it is a Raft snapshot like any other: it also compacts the log.
func (s *Store) Backup(ctx context.Context) (*Backup, error) {
	if s.IsLeader() {
		if err := s.ReadBarrier(ctx); err != nil {
			return nil, fmt.Errorf("backup: %w", err)
		}
	}
	f := s.raft.Snapshot()
	// Raft snapshots whenever its FSM applied anything (it answers
	// ErrNothingNewToSnapshot only before the first entry): a backup with
	// nothing new since the last one is a fresh snapshot of the same state.
	if err := f.Error(); err != nil {
		return nil, fmt.Errorf("backup: %w", raftError(err))
	}
	meta, rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	return &Backup{Index: meta.Index, Term: meta.Term, Size: meta.Size, Body: rc}, nil
}

// RestoreConfig says where and as whom a backup is restored.
type RestoreConfig struct {
	// Dir is the new node's data directory: absent or without Raft state.
	Dir string
	// ID and Advertise are the node's id and the Raft address its peers
	// dial, as the daemon will run it (gsd --id, --raft-advertise).
	ID, Advertise string
	// FSM must equal the FSM config of the group (the default).
	FSM fsm.Config
	// Voters, when set, are all the group's voters by id with their Raft
	// addresses, ID at Advertise among them: each restores the same backup
	// with the same Voters (a cluster restore), so they start as one group
	// at the backup's index. Empty: ID alone.
	Voters map[string]string
}

// Restore writes a backup (the bytes Backup streamed) into cfg.Dir as the
// Raft snapshot of a new group whose only voter is cfg.ID at cfg.Advertise,
// and returns the index it reflects. It checks the backup first by
// restoring it into a scratch FSM (format, hashes), and refuses a
// directory that holds Raft state (ErrDataDirInUse).
func Restore(cfg RestoreConfig, backup io.Reader) (uint64, error) {
	if cfg.Dir == "" || cfg.ID == "" || cfg.Advertise == "" {
		return 0, fmt.Errorf("%w: restore needs a data dir, a node id and a raft address", fsm.ErrMalformed)
	}
	conf, err := cfg.configuration()
	if err != nil {
		return 0, err
	}
	data, err := io.ReadAll(backup)
	if err != nil {
		return 0, fmt.Errorf("restore: read backup: %w", err)
	}
	check, err := fsm.New(cfg.FSM)
	if err != nil {
		return 0, err
	}
	if err := check.Restore(bytes.NewReader(data)); err != nil {
		return 0, fmt.Errorf("restore: the backup does not load: %w", err)
	}
	index := check.AppliedIndex()
	if index == 0 {
		return 0, fmt.Errorf("%w: the backup reflects no applied entry", fsm.ErrMalformed)
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return 0, fmt.Errorf("restore: %w", err)
	}
	logs, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(cfg.Dir, "raft.db"), BoltOptions: &bolt.Options{Timeout: 5 * time.Second}})
	if err != nil {
		return 0, fmt.Errorf("restore: open raft log: %w", err)
	}
	defer logs.Close()
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.Dir, 1, hclog.NewNullLogger())
	if err != nil {
		return 0, fmt.Errorf("restore: %w", err)
	}
	has, err := raft.HasExistingState(logs, logs, snaps)
	if err != nil {
		return 0, fmt.Errorf("restore: %w", err)
	}
	if has {
		return 0, fmt.Errorf("%w: %s", ErrDataDirInUse, cfg.Dir)
	}
	_, trans := raft.NewInmemTransport(raft.ServerAddress(cfg.Advertise)) // only to encode the legacy peers field
	defer trans.Close()
	const term = 1
	sink, err := snaps.Create(raft.SnapshotVersionMax, index, term, conf, index, trans)
	if err != nil {
		return 0, fmt.Errorf("restore: %w", err)
	}
	if _, err := sink.Write(data); err != nil {
		_ = sink.Cancel()
		return 0, fmt.Errorf("restore: write snapshot: %w", err)
	}
	if err := sink.Close(); err != nil {
		return 0, fmt.Errorf("restore: write snapshot: %w", err)
	}
	// The term the snapshot carries, as a bootstrap records it: the
	// node's first election then starts the next one.
	if err := logs.SetUint64([]byte("CurrentTerm"), term); err != nil {
		return 0, fmt.Errorf("restore: %w", err)
	}
	return index, nil
}

// configuration is the restored group's Raft configuration: cfg.Voters,
// or cfg.ID alone.
func (cfg RestoreConfig) configuration() (raft.Configuration, error) {
	if len(cfg.Voters) == 0 {
		return raft.Configuration{Servers: []raft.Server{{Suffrage: raft.Voter, ID: raft.ServerID(cfg.ID), Address: raft.ServerAddress(cfg.Advertise)}}}, nil
	}
	if cfg.Voters[cfg.ID] != cfg.Advertise {
		return raft.Configuration{}, fmt.Errorf("%w: restore: node %s at %s is not among the voters %v", fsm.ErrMalformed, cfg.ID, cfg.Advertise, cfg.Voters)
	}
	var conf raft.Configuration
	for _, id := range slices.Sorted(maps.Keys(cfg.Voters)) {
		conf.Servers = append(conf.Servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(id), Address: raft.ServerAddress(cfg.Voters[id])})
	}
	return conf, nil
}
