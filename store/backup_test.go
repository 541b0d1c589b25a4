package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"
)

// backupBytes streams a backup of s into memory.
func backupBytes(t *testing.T, s *Store) (*Backup, []byte) {
	t.Helper()
	b, err := s.Backup(ctxT(t))
	require.NoError(t, err)
	defer b.Body.Close()
	data, err := io.ReadAll(b.Body)
	require.NoError(t, err)
	require.Equal(t, b.Size, int64(len(data)))
	return b, data
}

// TestBackupRestoresIntoAFreshNodeWithTheSameHashes: a backup of a
// three-node group, restored as a new one-node group, serves every world
// at the same seq and state hash, with its sessions and player data.
func TestBackupRestoresIntoAFreshNodeWithTheSameHashes(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, nil)
	l := c.leader()
	for _, w := range []string{"arena", "lobby"} {
		mustCreateWorld(t, l, w)
		for i := range 5 {
			_, _, err := l.Act(ctxT(t), incr(w, "ann", uint64(i+1), "e", "c", int64(i)))
			require.NoError(t, err)
		}
	}
	_, err := l.Session(ctxT(t), fsm.CmdSessionOpen, &fsm.SessionCmd{World: "arena", ID: "s1", Player: "ann", TokenHash: sha256.Sum256([]byte("t"))})
	require.NoError(t, err)
	_, err = l.Session(ctxT(t), fsm.CmdSessionImport, &fsm.SessionCmd{World: "arena", Player: "ann", Data: []fsm.DataItem{{Key: "gold", Value: fsm.Int(7)}}})
	require.NoError(t, err)

	b, data := backupBytes(t, l)
	// The snapshot's index may be a trailing commit notice (notice.go),
	// which the FSM never sees: no applied entry lies beyond the FSM's.
	applied := l.adapter.appliedIndex()
	reflects := func(b *Backup) {
		t.Helper()
		require.GreaterOrEqual(t, b.Index, applied, "the leader's backup holds every write acknowledged before it")
		last, err := l.lastAppliable(b.Index)
		require.NoError(t, err)
		require.Equal(t, applied, last, "nothing the FSM applies lies between its index and the backup's")
	}
	reflects(b)
	// A second backup with nothing new applied is a new snapshot of the
	// same state (at the same index, or at the notice after it).
	b2, data2 := backupBytes(t, l)
	reflects(b2)
	require.Equal(t, data, data2)
	// A follower's backup is consistent too, at its own applied index.
	c.waitReplicated()
	for _, s := range c.nodes {
		if s != l {
			_, fdata := backupBytes(t, s)
			require.Equal(t, data, fdata)
			break
		}
	}

	cfg := testConfig(t, "restored", filepath.Join(t.TempDir(), "r"))
	index, err := Restore(RestoreConfig{Dir: cfg.Dir, ID: cfg.ID, Advertise: cfg.RaftAddr, FSM: cfg.FSM}, bytes.NewReader(data))
	require.NoError(t, err)
	// The restore reflects the FSM's applied index: the backup's own
	// index is the same or a trailing commit notice after it.
	require.Equal(t, applied, index)
	require.LessOrEqual(t, index, b.Index)
	_, err = Restore(RestoreConfig{Dir: cfg.Dir, ID: cfg.ID, Advertise: cfg.RaftAddr, FSM: cfg.FSM}, bytes.NewReader(data))
	require.ErrorIs(t, err, ErrDataDirInUse, "a restore never overwrites a node's state")

	r, err := New(cfg, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.Close(context.Background()) })
	require.Eventually(t, r.LeaderReady, 20*time.Second, 10*time.Millisecond, "the restored node elects itself")
	for _, w := range []string{"arena", "lobby"} {
		want, err := l.Hash(w, 0)
		require.NoError(t, err)
		got, err := r.Hash(w, 0)
		require.NoError(t, err)
		require.Equal(t, want.Seq, got.Seq, w)
		require.Equal(t, want.Hash, got.Hash, w)
	}
	info, err := r.SessionInfo("arena", "s1")
	require.NoError(t, err)
	require.Equal(t, fsm.Int(7), info.Data["gold"])
	// It takes writes where the original left off.
	ev, _, err := r.Act(ctxT(t), incr("arena", "ann", 6, "e", "c", 1))
	require.NoError(t, err)
	require.Equal(t, uint64(6), ev.Seq)
	_, dup, err := r.Act(ctxT(t), incr("arena", "ann", 5, "e", "c", 4))
	require.NoError(t, err)
	require.True(t, dup, "idempotency survives the restore")
}

func TestRestoreRefusesWhatIsNotABackup(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "r")
	cfg := RestoreConfig{Dir: dir, ID: "n1", Advertise: "127.0.0.1:1", FSM: fsm.DefaultConfig()}
	_, err := Restore(cfg, bytes.NewReader([]byte("not a snapshot")))
	require.ErrorIs(t, err, fsm.ErrMalformed)
	_, err = Restore(RestoreConfig{Dir: dir}, bytes.NewReader(nil))
	require.ErrorIs(t, err, fsm.ErrMalformed)

	// An empty state (nothing applied) is no backup either.
	f, err := fsm.New(fsm.DefaultConfig())
	require.NoError(t, err)
	var empty bytes.Buffer
	_, err = f.Snapshot().WriteTo(&empty)
	require.NoError(t, err)
	_, err = Restore(cfg, &empty)
	require.ErrorIs(t, err, fsm.ErrMalformed)
}

// TestRestoreWithVotersStartsTheGroupWithAllOfThem: a cluster restore
// writes the same snapshot on every voter with the whole configuration;
// a node that is not among the voters is refused before anything is
// written.
func TestRestoreWithVotersStartsTheGroupWithAllOfThem(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1, nil)
	l := c.leader()
	mustCreateWorld(t, l, "arena")
	_, data := backupBytes(t, l)
	voters := map[string]string{"n1": "127.0.0.1:1", "n2": "127.0.0.1:2"}
	dir := filepath.Join(t.TempDir(), "r")
	_, err := Restore(RestoreConfig{Dir: dir, ID: "n3", Advertise: "127.0.0.1:3", FSM: fsm.DefaultConfig(), Voters: voters}, bytes.NewReader(data))
	require.ErrorIs(t, err, fsm.ErrMalformed)
	require.NoDirExists(t, dir)
	_, err = Restore(RestoreConfig{Dir: dir, ID: "n2", Advertise: "127.0.0.1:2", FSM: fsm.DefaultConfig(), Voters: voters}, bytes.NewReader(data))
	require.NoError(t, err)
	snaps, err := raft.NewFileSnapshotStoreWithLogger(dir, 1, hclog.NewNullLogger())
	require.NoError(t, err)
	list, err := snaps.List()
	require.NoError(t, err)
	require.Len(t, list, 1)
	require.Equal(t, []raft.Server{
		{Suffrage: raft.Voter, ID: "n1", Address: "127.0.0.1:1"},
		{Suffrage: raft.Voter, ID: "n2", Address: "127.0.0.1:2"},
	}, list[0].Configuration.Servers)
}
