package pgtest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.Cleanup(func(int) { Cleanup() }))
}

func connect(t *testing.T, dsn string) (*pgx.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return pgx.Connect(ctx, dsn)
}

func TestServerKeepsCommittedRowsAcrossKillAndRestart(t *testing.T) {
	s := Start(t)
	ctx := context.Background()
	c, err := connect(t, s.DSN("postgres"))
	require.NoError(t, err)
	_, err = c.Exec(ctx, `CREATE TABLE t (v int); INSERT INTO t VALUES (1), (2)`)
	require.NoError(t, err)

	s.Kill(t)
	_, err = c.Exec(ctx, `SELECT 1`)
	require.Error(t, err, "a killed server answers nothing")
	c.Close(ctx)
	_, err = connect(t, s.DSN("postgres"))
	require.Error(t, err)

	s.Restart(t)
	c, err = connect(t, s.DSN("postgres"))
	require.NoError(t, err)
	defer c.Close(ctx)
	var n int
	require.NoError(t, c.QueryRow(ctx, `SELECT sum(v) FROM t`).Scan(&n))
	require.Equal(t, 3, n)
}

func TestTwoServersAreSeparate(t *testing.T) {
	a, b := Start(t), Start(t)
	require.NotEqual(t, a.DSN("postgres"), b.DSN("postgres"))
	ctx := context.Background()
	ca, err := connect(t, a.DSN("postgres"))
	require.NoError(t, err)
	defer ca.Close(ctx)
	_, err = ca.Exec(ctx, `CREATE TABLE only_in_a (v int)`)
	require.NoError(t, err)
	cb, err := connect(t, b.DSN("postgres"))
	require.NoError(t, err)
	defer cb.Close(ctx)
	var exists bool
	require.NoError(t, cb.QueryRow(ctx, `SELECT to_regclass('only_in_a') IS NOT NULL`).Scan(&exists))
	require.False(t, exists)
}

func TestKillOfAStoppedServerFails(t *testing.T) {
	s := Start(t)
	s.Kill(t)
	ft := &fakeT{TB: t}
	func() {
		defer func() { _ = recover() }()
		s.Kill(ft)
	}()
	require.True(t, ft.failed)
}

func TestRestartOfARunningServerFails(t *testing.T) {
	s := Start(t)
	ft := &fakeT{TB: t}
	func() {
		defer func() { _ = recover() }()
		s.Restart(ft)
	}()
	require.True(t, ft.failed)
}

func TestStartWithoutBinariesSkipsOrFails(t *testing.T) {
	old := binGlob
	binGlob = "/nonexistent/*/bin"
	t.Setenv("PATH", "/nonexistent")
	defer func() { binGlob = old }()

	t.Setenv(RequireEnv, "")
	ft := &fakeT{TB: t}
	func() {
		defer func() { _ = recover() }()
		Start(ft)
	}()
	require.True(t, ft.skipped)
	require.Contains(t, ft.msg, "make pg-install")

	t.Setenv(RequireEnv, "1")
	ft = &fakeT{TB: t}
	func() {
		defer func() { _ = recover() }()
		Start(ft)
	}()
	require.True(t, ft.failed)
	require.Contains(t, ft.msg, "no postgres and initdb binaries")
}

func TestMajorOfOrdersDebianVersions(t *testing.T) {
	require.Equal(t, 15, majorOf("/usr/lib/postgresql/15/bin"))
	require.Equal(t, 0, majorOf("/opt/pg/bin"))
}

// fakeT records a helper's Fatal or Skip; both end the helper with a panic
// the caller recovers (runtime.Goexit would end the test itself).
type fakeT struct {
	testing.TB
	failed, skipped bool
	msg             string
}

func (f *fakeT) Helper() {}
func (f *fakeT) Fatal(args ...any) {
	f.failed = true
	panic("fatal")
}
func (f *fakeT) Fatalf(format string, args ...any) {
	f.failed, f.msg = true, fmt.Sprintf(format, args...)
	panic("fatal")
}
func (f *fakeT) Skipf(format string, args ...any) {
	f.skipped, f.msg = true, fmt.Sprintf(format, args...)
	panic("skip")
}
func (f *fakeT) Cleanup(fn func()) { f.TB.Cleanup(fn) }

func TestAServerThatCannotStartReportsItsLog(t *testing.T) {
	Start(t) // skips where PostgreSQL is missing
	bin, err := findBin()
	require.NoError(t, err)
	cred, err := credential()
	require.NoError(t, err)
	s := &Server{bin: bin, cred: cred}
	s.base, err = s.mkdirTemp()
	require.NoError(t, err)
	defer s.Close()
	require.NoError(t, s.mkdir(s.dataDir())) // empty: no cluster in it
	err = s.startServer()
	require.ErrorContains(t, err, "postgres exited during start")
	require.ErrorContains(t, err, "postgresql.conf", "the error carries the server's log")
}
