package api

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/api/internal/apitest"
	"github.com/gsd-dev/gsd/client"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/store"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// groupSnapshot returns the snapshot bytes of a state with world arena
// after two events, and arena's summary.
func groupSnapshot(t *testing.T) ([]byte, fsm.WorldInfo) {
	t.Helper()
	f, err := fsm.New(fsm.DefaultConfig())
	require.NoError(t, err)
	apply := func(index uint64, c fsm.Command) {
		for _, r := range f.Apply(index, fsm.EncodeBatch(&fsm.Batch{Time: 1, Commands: []fsm.Command{c}})) {
			require.NoError(t, r.Err)
		}
	}
	apply(1, fsm.Command{Kind: fsm.CmdCreateWorld, World: &fsm.WorldSpec{ID: "arena"}})
	for i := range 2 {
		apply(uint64(i+2), fsm.Command{Kind: fsm.CmdAction, Action: &fsm.Action{World: "arena", Player: "p1", Seq: uint64(i + 1),
			Ops: []fsm.Op{{Kind: fsm.OpIncr, Entity: "e1", Field: "n", By: 1}}}})
	}
	var buf bytes.Buffer
	_, err = f.Snapshot().WriteTo(&buf)
	require.NoError(t, err)
	wi, err := f.World("arena")
	require.NoError(t, err)
	require.Equal(t, uint64(2), wi.Seq)
	return buf.Bytes(), wi
}

// TestBackupOfAGroupComesFromItsLeaderWithItsWorlds: ?group=0 on a
// one-group node streams the snapshot from the leader only, with the
// worlds it holds in the trailer; other groups, a bad id, a follower and a
// stream that is not a snapshot are refused.
func TestBackupOfAGroupComesFromItsLeaderWithItsWorlds(t *testing.T) {
	t.Parallel()
	data, wi := groupSnapshot(t)
	fake := apitest.NewFake()
	fake.StatusVal.ID = "n1"
	fake.LeaderFlag.Store(true)
	b := &backupFake{Fake: fake, data: data}
	e := newEnvFor(t, b)
	c := client.New([]string{e.TS.Listener.Addr().String()})
	t.Cleanup(c.Close)
	got, err := c.BackupGroup(context.Background(), 0)
	require.NoError(t, err)
	_, err = got.Worlds()
	require.ErrorContains(t, err, "read Body to its end first")
	body, err := io.ReadAll(got.Body)
	require.NoError(t, err)
	require.NoError(t, got.Body.Close())
	require.Equal(t, data, body)
	require.Equal(t, client.Backup{Index: 42, Term: 3, Node: "n1", Size: int64(len(data)), Group: 0},
		client.Backup{Index: got.Index, Term: got.Term, Node: got.Node, Size: got.Size, Group: got.Group})
	worlds, err := got.Worlds()
	require.NoError(t, err)
	require.Equal(t, []wire.BackupWorld{{ID: "arena", Seq: 2, Index: wi.Index, Hash: wire.Hash(wire.HashString(wi.Hash)), Incarnation: wi.Incarnation}}, worlds)
	plain, err := c.Backup(context.Background())
	require.NoError(t, err)
	plain.Body.Close()
	_, err = plain.Worlds()
	require.ErrorContains(t, err, "only a group's backup")

	e.RequireError(404, fsm.CodeNotFound, "GET", wire.PathBackup+"?group=1", "")
	e.RequireError(400, fsm.CodeMalformed, "GET", wire.PathBackup+"?group=x", "")
	fake.LeaderFlag.Store(false)
	e.RequireError(503, edge.CodeNotLeader, "GET", wire.PathBackup+"?group=0", "")
	fake.LeaderFlag.Store(true)
	b.err = store.ErrClosed
	e.RequireError(503, edge.CodeUnavailable, "GET", wire.PathBackup+"?group=0", "")

	// Bytes that are not a snapshot, or a stream that breaks, never end
	// with a trailer: the client sees a broken body, not a whole backup.
	b.err = nil
	for _, tc := range []struct {
		data  []byte
		short int
	}{{[]byte("not a snapshot"), 0}, {data, 10}} {
		b.data, b.short = tc.data, tc.short
		got, err = c.BackupGroup(context.Background(), 0)
		require.NoError(t, err)
		_, err = io.ReadAll(got.Body)
		require.Error(t, err)
		got.Body.Close()
	}
}

func TestBackupOfAGroupNeedsABackendThatStreamsAndAnAnswerWithItsPosition(t *testing.T) {
	t.Parallel()
	plain := newEnv(t, apitest.NewFake())
	plain.RequireError(422, "not_supported", "GET", wire.PathBackup+"?group=0", "")

	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(wire.HeaderBackupIndex, "1")
		w.Header().Set(wire.HeaderBackupTerm, "1")
		w.Header().Set(wire.HeaderBackupSize, "12")
		w.Header().Set(wire.HeaderBackupGroup, "2") // not the group asked for
		_, _ = w.Write([]byte("not a backup"))
	}))
	t.Cleanup(ts.Close)
	c := client.New([]string{ts.Listener.Addr().String()}, client.WithMaxAttempts(1))
	t.Cleanup(c.Close)
	_, err := c.BackupGroup(context.Background(), 1)
	require.ErrorContains(t, err, "answered a backup of group 1 without its group")
}
