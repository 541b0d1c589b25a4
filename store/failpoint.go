//go:build gsd_failpoints

package store

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// Failpoints: disk-fault injection for the fault suite (jepsen-style/),
// compiled only into binaries built with -tags gsd_failpoints. Normal builds
// use failpoint_off.go, whose withFailpoints returns its arguments.
//
// Every failpoint is named here and only here:
const (
	// FPRaftLogAppend runs before the Raft log store writes entries
	// (StoreLog/StoreLogs): the leader's own append, a follower's
	// AppendEntries. Actions: sleep (slow fsync), hang, error (ENOSPC), crash.
	FPRaftLogAppend = "raft-log-append"
	// FPRaftLogAppended runs after the entries are durable in the Raft log,
	// before StoreLogs returns: before the entries are acknowledged,
	// committed or applied. Action: crash.
	FPRaftLogAppended = "raft-log-appended"
	// FPRaftStable runs before the stable store writes (current term, vote).
	// hashicorp/raft panics when these fail. Actions: sleep, hang, error, crash.
	FPRaftStable = "raft-stable-set"
	// FPRaftLogCompact runs before the log store deletes a range (log
	// compaction after a snapshot, conflict truncation on a follower).
	// Actions: error, crash.
	FPRaftLogCompact = "raft-log-compact"
	// FPArchiveWrite runs before each event archive write, through the
	// archive's failWrite hook (the feed writer retries with backoff):
	// after the FSM applied the events, before they are archived.
	// Actions: sleep, hang, error, crash.
	FPArchiveWrite = "archive-write"
	// FPSnapshotWrite runs after each chunk written to a snapshot sink
	// (the node's own snapshot, or one received by InstallSnapshot): a crash
	// leaves a partial snapshot. Actions: sleep, error, crash.
	FPSnapshotWrite = "snapshot-write"
	// FPSnapshotClose runs before a snapshot sink is closed (data written,
	// snapshot not yet committed). Actions: error, crash.
	FPSnapshotClose = "snapshot-close"
)

// FailpointFile is the control file in the data dir. The process reads it
// every 50 ms; each line is `name=action`, where action is one of
//
//	off | sleep(250ms) | hang | error(enospc) | error(eio) | crash
//
// A missing or empty file turns every failpoint off. `hang` blocks until
// the failpoint is changed; `crash` SIGKILLs the process at the first hit.
const FailpointFile = "failpoints"

// FailpointsEnabled reports whether this binary has failpoints.
const FailpointsEnabled = true

type fpAction struct {
	spec  string
	kind  string // sleep, hang, error, crash
	delay time.Duration
	err   error
	fired atomic.Bool
}

type failpoints struct {
	path  string
	log   *slog.Logger
	state atomic.Pointer[map[string]*fpAction]
	raw   []byte
}

func parseFailpoints(b []byte) (map[string]*fpAction, error) {
	m := map[string]*fpAction{}
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, spec, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("failpoint line %q: want name=action", line)
		}
		name, spec = strings.TrimSpace(name), strings.TrimSpace(spec)
		a := &fpAction{spec: spec}
		arg := ""
		if i := strings.IndexByte(spec, '('); i > 0 && strings.HasSuffix(spec, ")") {
			a.kind, arg = spec[:i], spec[i+1:len(spec)-1]
		} else {
			a.kind = spec
		}
		switch a.kind {
		case "off":
			continue
		case "sleep":
			d, err := time.ParseDuration(arg)
			if err != nil {
				return nil, fmt.Errorf("failpoint %s: %w", name, err)
			}
			a.delay = d
		case "hang", "crash":
		case "error":
			switch strings.ToLower(arg) {
			case "", "enospc":
				a.err = syscall.ENOSPC
			case "eio":
				a.err = syscall.EIO
			default:
				return nil, fmt.Errorf("failpoint %s: unknown error %q", name, arg)
			}
		default:
			return nil, fmt.Errorf("failpoint %s: unknown action %q", name, spec)
		}
		m[name] = a
	}
	return m, nil
}

func (f *failpoints) load() {
	b, err := os.ReadFile(f.path)
	if err != nil && !os.IsNotExist(err) {
		return
	}
	if bytes.Equal(b, f.raw) && f.state.Load() != nil {
		return
	}
	m, perr := parseFailpoints(b)
	if perr != nil {
		f.log.Error("failpoints: bad control file; keeping the previous state", "err", perr)
		f.raw = b
		return
	}
	f.raw = b
	f.state.Store(&m)
	f.log.Warn("failpoints set", "spec", strings.TrimSpace(strings.ReplaceAll(string(b), "\n", "; ")))
}

func (f *failpoints) poll(stop <-chan struct{}) {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			f.load()
		}
	}
}

func (f *failpoints) get(name string) *fpAction {
	m := f.state.Load()
	if m == nil {
		return nil
	}
	return (*m)[name]
}

// eval runs failpoint name's action, if armed.
func (f *failpoints) eval(name string) error {
	a := f.get(name)
	if a == nil {
		return nil
	}
	if !a.fired.Swap(true) && a.kind != "crash" {
		f.log.Warn("failpoint fired", "failpoint", name, "action", a.spec)
	}
	switch a.kind {
	case "sleep":
		time.Sleep(a.delay)
	case "hang":
		for f.get(name) == a {
			time.Sleep(10 * time.Millisecond)
		}
	case "error":
		return fmt.Errorf("failpoint %s: %w", name, a.err)
	case "crash":
		// Like kill -9: no deferred functions, no flushing, no coverage.
		fmt.Fprintf(os.Stderr, "failpoint %s: crash (SIGKILL self) at %s\n", name, time.Now().Format(time.RFC3339Nano))
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way
	}
	return nil
}

// withFailpoints wraps the Raft log, stable and snapshot stores and hooks
// the event archive so the failpoints above can act on them.
func withFailpoints(s *Store, ls *raftboltdb.BoltStore, snaps raft.SnapshotStore) (raft.LogStore, raft.StableStore, raft.SnapshotStore) {
	fp := &failpoints{path: filepath.Join(s.cfg.Dir, FailpointFile), log: s.log.With("component", "failpoints")}
	fp.load()
	go fp.poll(s.stop)
	hook := func() error { return fp.eval(FPArchiveWrite) }
	s.arch.failWrite.Store(&hook)
	w := &fpLogStore{BoltStore: ls, fp: fp}
	return w, w, &fpSnapshotStore{SnapshotStore: snaps, fp: fp}
}

// fpLogStore is raft-boltdb's store with failpoints in front of its writes.
type fpLogStore struct {
	*raftboltdb.BoltStore
	fp *failpoints
}

func (l *fpLogStore) StoreLog(log *raft.Log) error { return l.StoreLogs([]*raft.Log{log}) }

func (l *fpLogStore) StoreLogs(logs []*raft.Log) error {
	if err := l.fp.eval(FPRaftLogAppend); err != nil {
		return err
	}
	if err := l.BoltStore.StoreLogs(logs); err != nil {
		return err
	}
	return l.fp.eval(FPRaftLogAppended)
}

func (l *fpLogStore) DeleteRange(min, max uint64) error {
	if err := l.fp.eval(FPRaftLogCompact); err != nil {
		return err
	}
	return l.BoltStore.DeleteRange(min, max)
}

func (l *fpLogStore) Set(k, v []byte) error {
	if err := l.fp.eval(FPRaftStable); err != nil {
		return err
	}
	return l.BoltStore.Set(k, v)
}

func (l *fpLogStore) SetUint64(k []byte, v uint64) error {
	if err := l.fp.eval(FPRaftStable); err != nil {
		return err
	}
	return l.BoltStore.SetUint64(k, v)
}

type fpSnapshotStore struct {
	raft.SnapshotStore
	fp *failpoints
}

func (s *fpSnapshotStore) Create(version raft.SnapshotVersion, index, term uint64, configuration raft.Configuration,
	configurationIndex uint64, trans raft.Transport) (raft.SnapshotSink, error) {
	sink, err := s.SnapshotStore.Create(version, index, term, configuration, configurationIndex, trans)
	if err != nil {
		return nil, err
	}
	return &fpSink{SnapshotSink: sink, fp: s.fp}, nil
}

type fpSink struct {
	raft.SnapshotSink
	fp *failpoints
}

func (k *fpSink) Write(p []byte) (int, error) {
	n, err := k.SnapshotSink.Write(p)
	if err != nil {
		return n, err
	}
	if err := k.fp.eval(FPSnapshotWrite); err != nil {
		return n, err
	}
	return n, nil
}

func (k *fpSink) Close() error {
	if err := k.fp.eval(FPSnapshotClose); err != nil {
		_ = k.SnapshotSink.Cancel()
		return err
	}
	return k.SnapshotSink.Close()
}
