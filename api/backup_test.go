package api

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/api/internal/apitest"
	"github.com/gsd-dev/gsd/client"
	"github.com/gsd-dev/gsd/store"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// backupFake is the fake backend plus a snapshot to stream.
type backupFake struct {
	*apitest.Fake
	data  []byte
	short int // bytes the body loses (a broken stream)
	err   error
}

func (f *backupFake) Backup(context.Context) (*store.Backup, error) {
	if f.err != nil {
		return nil, f.err
	}
	return &store.Backup{Index: 42, Term: 3, Size: int64(len(f.data)),
		Body: io.NopCloser(bytes.NewReader(f.data[:len(f.data)-f.short]))}, nil
}

func TestBackupStreamsTheSnapshotWithItsPosition(t *testing.T) {
	t.Parallel()
	fake := apitest.NewFake()
	fake.StatusVal.ID = "n1"
	b := &backupFake{Fake: fake, data: bytes.Repeat([]byte("snap"), 50_000)}
	e := newEnvFor(t, b)
	code, h, body := e.Do("GET", wire.PathBackup, "")
	require.Equal(t, 200, code)
	require.Equal(t, b.data, body)
	require.Equal(t, "application/octet-stream", h.Get("Content-Type"))
	require.Equal(t, "42", h.Get(wire.HeaderBackupIndex))
	require.Equal(t, "3", h.Get(wire.HeaderBackupTerm))
	require.Equal(t, "n1", h.Get(wire.HeaderBackupNode))
	require.Contains(t, h.Get("Content-Disposition"), "gsd-n1-42.backup")

	c := client.New([]string{e.TS.Listener.Addr().String()})
	t.Cleanup(c.Close)
	got, err := c.Backup(context.Background())
	require.NoError(t, err)
	data, err := io.ReadAll(got.Body)
	require.NoError(t, err)
	require.NoError(t, got.Body.Close())
	require.Equal(t, b.data, data)
	require.Equal(t, client.Backup{Index: 42, Term: 3, Node: "n1", Size: int64(len(b.data))}, client.Backup{Index: got.Index, Term: got.Term, Node: got.Node, Size: got.Size})

	// A stream that breaks midway never reads as a whole backup.
	b.short = 10
	got, err = c.Backup(context.Background())
	require.NoError(t, err)
	_, err = io.ReadAll(got.Body)
	require.Error(t, err)
	got.Body.Close()

	b.err = store.ErrNotLeader
	e.RequireError(503, edge.CodeNotLeader, "GET", wire.PathBackup, "")
	b.err = errors.New("disk on fire")
	e.RequireError(500, edge.CodeInternal, "GET", wire.PathBackup, "")
}

func TestBackupIsAnAdminRouteAndNeedsABackendThatStreams(t *testing.T) {
	t.Parallel()
	secret := "0123456789abcdef0123456789abcdef"
	b := &backupFake{Fake: apitest.NewFake(), data: []byte("snap")}
	e := newEnvFor(t, b, func(c *Config) { c.ClusterSecret = []byte(secret) })
	e.RequireError(401, edge.CodeUnauthorized, "GET", wire.PathBackup, "")
	code, _, body := e.Do("GET", wire.PathBackup, "", edge.HeaderClusterKey, secret)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "snap", string(body))

	// The plain fake cannot stream a backup.
	plain := newEnv(t, apitest.NewFake())
	plain.RequireError(422, "not_supported", "GET", wire.PathBackup, "")
}

func TestClientBackupRefusesAnAnswerWithoutItsPosition(t *testing.T) {
	t.Parallel()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("not a backup"))
	}))
	t.Cleanup(ts.Close)
	c := client.New([]string{ts.Listener.Addr().String()}, client.WithMaxAttempts(1))
	t.Cleanup(c.Close)
	_, err := c.Backup(context.Background())
	require.ErrorContains(t, err, "without its index")
}
