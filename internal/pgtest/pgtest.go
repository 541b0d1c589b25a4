// Package pgtest starts throwaway PostgreSQL servers for tests: Debian's
// postgresql package (`make pg-install` installs it when missing), a fresh
// cluster in a temporary directory, reached over a unix socket in that
// directory only, so tests on one machine never share a server or a port.
//
// When the process runs as root (CI does), the server runs as the
// postgres user, which Debian's package creates: PostgreSQL refuses to
// run as root.
//
// A test that needs PostgreSQL calls Start; when no server can be started
// the test is skipped with the reason, unless GSD_PGTEST_REQUIRE is set
// (`make test` sets it after installing PostgreSQL), when it fails.
package pgtest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// RequireEnv names the environment variable that turns "cannot start
// PostgreSQL" from a skip into a failure.
const RequireEnv = "GSD_PGTEST_REQUIRE"

// User is the database superuser of every server Start makes.
const User = "gsd"

// port is the server's port: it only names the socket file, which lives in
// the server's own directory, so every server can use the same one.
const port = 5432

// startTimeout bounds one server start (crash recovery included).
const startTimeout = time.Minute

// Server is one running (or killed) PostgreSQL server of a test.
type Server struct {
	bin  string // directory holding postgres, initdb
	base string // temporary directory: data/, sock/, log
	cred *syscall.Credential

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// template is one initdb'd cluster per test binary, copied for every
// server (initdb takes seconds; a copy takes milliseconds).
var template struct {
	once sync.Once
	dir  string
	err  error
}

// Start starts a new server for t and stops it when t ends. It skips t
// (or fails it, under GSD_PGTEST_REQUIRE) when PostgreSQL is not
// installed or does not start.
func Start(t testing.TB) *Server {
	t.Helper()
	s, err := start()
	if err != nil {
		if os.Getenv(RequireEnv) != "" {
			t.Fatalf("pgtest: %v", err)
		}
		t.Skipf("pgtest: PostgreSQL cannot be started here (%v); run `make pg-install`", err)
	}
	t.Cleanup(s.Close)
	return s
}

func start() (*Server, error) {
	bin, err := findBin()
	if err != nil {
		return nil, err
	}
	cred, err := credential()
	if err != nil {
		return nil, err
	}
	s := &Server{bin: bin, cred: cred}
	template.once.Do(func() { template.dir, template.err = s.initTemplate() })
	if template.err != nil {
		return nil, template.err
	}
	if s.base, err = s.mkdirTemp(); err != nil {
		return nil, err
	}
	// cp -a as the server's user keeps the 0700 data dir it insists on.
	if err := s.run("cp", "-a", filepath.Join(template.dir, "data"), s.dataDir()); err != nil {
		s.Close()
		return nil, fmt.Errorf("copy template cluster: %w", err)
	}
	if err := s.startServer(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Cleanup removes the template cluster; call it from TestMain after m.Run.
func Cleanup() {
	if template.dir != "" {
		os.RemoveAll(template.dir)
	}
}

// DSN returns a libpq connection string for database dbname ("postgres"
// always exists).
func (s *Server) DSN(dbname string) string {
	return fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=disable", s.sockDir(), port, User, dbname)
}

// Kill stops the server at once, as a crash would (an immediate shutdown:
// no checkpoint, crash recovery on the next start), and waits until it
// has exited.
func (s *Server) Kill(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		t.Fatal("pgtest: Kill of a server that is not running")
	}
	_ = cmd.Process.Signal(syscall.SIGQUIT)
	<-done
}

// Restart starts a killed server again on the same data.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	if err := s.startServer(); err != nil {
		t.Fatalf("pgtest: restart: %v", err)
	}
}

// Close stops the server (if running) and removes its files.
func (s *Server) Close() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd != nil {
		_ = cmd.Process.Signal(syscall.SIGQUIT)
		<-done
	}
	if s.base != "" {
		os.RemoveAll(s.base)
	}
}

func (s *Server) dataDir() string { return filepath.Join(s.base, "data") }
func (s *Server) sockDir() string { return filepath.Join(s.base, "sock") }

// startServer runs postgres on the data dir and waits until it accepts
// connections.
func (s *Server) startServer() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return errors.New("server already running")
	}
	if err := s.mkdir(s.sockDir()); err != nil {
		return err
	}
	logf, err := os.OpenFile(filepath.Join(s.base, "postgres.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(filepath.Join(s.bin, "postgres"), "-D", s.dataDir(),
		"-p", strconv.Itoa(port), "-k", s.sockDir(),
		"-c", "listen_addresses=", // the unix socket only
		// A killed server must keep what it acknowledged, as a crashed one
		// does: commits are written to the OS (synchronous_commit stays
		// on), only the fsyncs a machine crash would need are skipped.
		"-c", "fsync=off", "-c", "full_page_writes=off",
		"-c", "max_connections=50", "-c", "shared_buffers=16MB")
	cmd.Dir = s.base
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group, and an immediate shutdown when the test
	// binary dies without cleaning up (a timeout's panic).
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred, Setpgid: true, Pdeathsig: syscall.SIGQUIT}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	if err := s.waitReady(done); err != nil {
		_ = cmd.Process.Signal(syscall.SIGQUIT)
		<-done
		return fmt.Errorf("%w\n%s", err, s.logTail())
	}
	s.cmd, s.done = cmd, done
	return nil
}

// waitReady polls postmaster.pid until the server says "ready" on its
// status line (PostgreSQL 10 and later).
func (s *Server) waitReady(done <-chan struct{}) error {
	deadline := time.Now().Add(startTimeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		b, err := os.ReadFile(filepath.Join(s.dataDir(), "postmaster.pid"))
		if err == nil {
			if lines := strings.Split(string(b), "\n"); len(lines) > 7 && strings.TrimSpace(lines[7]) == "ready" {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("postgres not ready after %v", startTimeout)
		}
		select {
		case <-done:
			return errors.New("postgres exited during start")
		case <-tick.C:
		}
	}
}

// logTail returns the end of the server's log, for error messages.
func (s *Server) logTail() string {
	b, _ := os.ReadFile(filepath.Join(s.base, "postgres.log"))
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// initTemplate runs initdb once into a new temporary directory.
func (s *Server) initTemplate() (string, error) {
	dir, err := s.mkdirTemp()
	if err != nil {
		return "", err
	}
	data := filepath.Join(dir, "data")
	cmd := exec.Command(filepath.Join(s.bin, "initdb"), "-D", data, "-U", User,
		"--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync")
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	if out, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("initdb: %v\n%s", err, out)
	}
	return dir, nil
}

// mkdirTemp makes a temporary directory the server's user owns (t.TempDir
// is root's and closed to it).
func (s *Server) mkdirTemp() (string, error) {
	dir, err := os.MkdirTemp("", "gsd-pgtest-")
	if err != nil {
		return "", err
	}
	if err := s.chown(dir); err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	return dir, nil
}

func (s *Server) mkdir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return s.chown(dir)
}

func (s *Server) chown(path string) error {
	if s.cred == nil {
		return nil
	}
	if err := os.Chown(path, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
		return fmt.Errorf("give %s to the postgres user: %w", path, err)
	}
	return nil
}

// run runs a command as the server's user.
func (s *Server) run(name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %v: %s", name, err, out.String())
	}
	return nil
}

// credential returns whom to run the server as: the postgres user when
// this process is root, else nil (this process's user).
func credential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root and no postgres user to run the server as: %w", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("postgres user: %w", err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// binGlob is where Debian's packages put the server binaries, one
// directory per major version.
var binGlob = "/usr/lib/postgresql/*/bin"

// findBin returns the directory holding postgres and initdb: Debian's
// newest version, else the ones on PATH.
func findBin() (string, error) {
	dirs, _ := filepath.Glob(binGlob)
	sort.Slice(dirs, func(i, j int) bool { return majorOf(dirs[i]) > majorOf(dirs[j]) })
	for _, d := range dirs {
		if isFile(filepath.Join(d, "postgres")) && isFile(filepath.Join(d, "initdb")) {
			return d, nil
		}
	}
	if p, err := exec.LookPath("postgres"); err == nil {
		d := filepath.Dir(p)
		if isFile(filepath.Join(d, "initdb")) {
			return d, nil
		}
	}
	return "", errors.New("no postgres and initdb binaries found (Debian package postgresql)")
}

// majorOf returns the major version in /usr/lib/postgresql/N/bin.
func majorOf(dir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return n
}

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir()
}
