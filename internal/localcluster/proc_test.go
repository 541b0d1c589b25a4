package localcluster

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestProcSignalsPauseAndExit(t *testing.T) {
	log := filepath.Join(t.TempDir(), "p.log")
	p, err := StartProc("sleep", []string{"60"}, []string{"X=1"}, log, "=== banner")
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Signal(syscall.SIGKILL, 0) })
	require.True(t, p.Running())
	require.Positive(t, p.PID())
	require.False(t, p.WaitExit(time.Millisecond), "sleep 60 is still running")

	require.NoError(t, p.Signal(syscall.SIGSTOP, 0))
	require.True(t, p.Paused())
	require.True(t, p.Running(), "a paused process is running")
	require.NoError(t, p.Signal(syscall.SIGCONT, 0))
	require.False(t, p.Paused())

	require.NoError(t, p.Signal(syscall.SIGTERM, time.Minute))
	require.False(t, p.Running())
	<-p.Done()
	require.True(t, p.WaitExit(time.Millisecond))
	require.ErrorContains(t, p.Signal(syscall.SIGTERM, 0), "not running")

	b, err := os.ReadFile(log)
	require.NoError(t, err)
	require.Equal(t, "=== banner\n", string(b))
}

func TestProcSigtermIgnoredEndsInSigkill(t *testing.T) {
	p, err := StartProc("sh", []string{"-c", "trap '' TERM; echo ready; sleep 60 & wait"}, nil, filepath.Join(t.TempDir(), "p.log"), "")
	require.NoError(t, err)
	require.NoError(t, p.Signal(syscall.SIGTERM, 50*time.Millisecond))
	require.False(t, p.Running())
}

func TestNilProcIsNotRunning(t *testing.T) {
	var p *Proc
	require.False(t, p.Running())
	require.False(t, p.Paused())
	require.Zero(t, p.PID())
	require.True(t, p.WaitExit(0))
	require.Error(t, p.Signal(syscall.SIGKILL, 0))
}

func TestStartProcErrors(t *testing.T) {
	_, err := StartProc("sleep", nil, nil, filepath.Join(t.TempDir(), "no", "such", "dir", "p.log"), "")
	require.Error(t, err)
	_, err = StartProc(filepath.Join(t.TempDir(), "no-such-binary"), nil, nil, filepath.Join(t.TempDir(), "p.log"), "")
	require.Error(t, err)
}

func TestWaitReady(t *testing.T) {
	var ready atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/readyz" && ready.Load() {
			return
		}
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	dir := t.TempDir()

	p, err := StartProc("sleep", []string{"60"}, nil, filepath.Join(dir, "p.log"), "")
	require.NoError(t, err)
	defer func() { _ = p.Signal(syscall.SIGKILL, 0) }()

	// Not ready: the limit passes.
	err = WaitReady(context.Background(), p, addr, "p.log", 100*time.Millisecond)
	require.ErrorContains(t, err, "not ready after")
	require.ErrorIs(t, err, context.DeadlineExceeded)

	ready.Store(true)
	require.NoError(t, WaitReady(context.Background(), p, addr, "p.log", time.Minute))

	// A process that exits is reported with its log.
	q, err := StartProc("true", nil, nil, filepath.Join(dir, "q.log"), "")
	require.NoError(t, err)
	<-q.Done()
	require.ErrorContains(t, WaitReady(context.Background(), q, addr, "q.log", time.Minute), "exited before it was ready; see q.log")
}
