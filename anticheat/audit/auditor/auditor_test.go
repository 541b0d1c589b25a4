package auditor

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/anticheat/audit"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/note"
)

// syncBuf is a log sink safe for the auditor's goroutines.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func testConfig(logs *syncBuf) Config {
	cfg := DefaultConfig()
	cfg.ScanInterval, cfg.SignInterval = time.Millisecond, time.Hour
	cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	return cfg
}

func key(t *testing.T, name string) (audit.SigningKey, audit.VerifyingKey) {
	t.Helper()
	priv, pub, err := audit.GenerateKey(name)
	require.NoError(t, err)
	s, err := audit.ParseSigningKey(priv)
	require.NoError(t, err)
	v, err := audit.ParseVerifyingKey(pub)
	require.NoError(t, err)
	return s, v
}

// signingConfig is testConfig with a key "gsd-audit" that signs, and its
// verifier.
func signingConfig(t *testing.T, logs *syncBuf) (Config, audit.VerifyingKey) {
	t.Helper()
	s, v := key(t, "gsd-audit")
	cfg := testConfig(logs)
	cfg.Signers = []note.Signer{s}
	return cfg, v
}

// run runs a over its source until stop, which waits for Run to return.
func run(a *Auditor) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); a.Run(ctx) }()
	return func() { cancel(); <-done }
}

// start runs a over its source until the test ends.
func start(t *testing.T, a *Auditor) { t.Cleanup(run(a)) }

func waitSize(t *testing.T, a *Auditor, world string, n int64) {
	t.Helper()
	require.Eventually(t, func() bool {
		st, err := a.Status(world)
		return err == nil && st.Size == n
	}, 10*time.Second, time.Millisecond)
}

// want returns the checkpoint of world's events in src, logged in memory.
func want(t *testing.T, src *source, world string) audit.Checkpoint {
	t.Helper()
	l, err := audit.Open(world, &audit.MemStore{})
	require.NoError(t, err)
	for _, e := range src.events[world] {
		w := e.Wire()
		require.NoError(t, l.Append(&w))
	}
	cp, err := l.Checkpoint()
	require.NoError(t, err)
	return cp
}

func TestConfigValidateNamesEveryBadField(t *testing.T) {
	require.NoError(t, DefaultConfig().Validate())
	err := Config{Signers: []note.Signer{nil}}.Validate()
	for _, f := range []string{"SignInterval", "ScanInterval", "MaxBatch", "Logger", "Signers[0]"} {
		require.ErrorContains(t, err, f)
	}
	_, err = New(Config{}, newSource(), newStores())
	require.Error(t, err)
	_, err = New(DefaultConfig(), nil, newStores())
	require.Error(t, err)
}

func TestEveryWorldsCommittedEventsAreLoggedInOrder(t *testing.T) {
	src, st, logs := newSource(), newStores(), &syncBuf{}
	src.add("arena", 7)
	cfg := testConfig(logs)
	cfg.MaxBatch = 3 // a busy world's reads are joined, up to MaxBatch
	a, err := New(cfg, src, st)
	require.NoError(t, err)
	start(t, a)
	waitSize(t, a, "arena", 7)

	// A world created while it runs, and events committed later.
	src.add("lobby", 2)
	src.add("arena", 5)
	waitSize(t, a, "arena", 12)
	waitSize(t, a, "lobby", 2)
	for _, w := range []string{"arena", "lobby"} {
		l, err := a.Log(w)
		require.NoError(t, err)
		got, err := l.Checkpoint()
		require.NoError(t, err)
		require.Equal(t, want(t, src, w), got)
	}
	_, err = a.Log("nowhere")
	require.ErrorIs(t, err, fsm.ErrUnknownWorld)
	_, err = a.Status("nowhere")
	require.ErrorIs(t, err, fsm.ErrUnknownWorld)
}

func TestARestartedAuditorResumesFromItsStoredSize(t *testing.T) {
	src, st, logs := newSource(), newStores(), &syncBuf{}
	src.add("arena", 5)
	a, err := New(testConfig(logs), src, st)
	require.NoError(t, err)
	stop := run(a)
	waitSize(t, a, "arena", 5)
	stop()

	// The old events are pruned from the feed: a resume from the stored
	// size needs none of them.
	src.add("arena", 4)
	src.mu.Lock()
	src.first["arena"] = 6
	src.mu.Unlock()
	b, err := New(testConfig(logs), src, st)
	require.NoError(t, err)
	start(t, b)
	waitSize(t, b, "arena", 9)
	l, err := b.Log("arena")
	require.NoError(t, err)
	got, err := l.Checkpoint()
	require.NoError(t, err)
	require.Equal(t, want(t, src, "arena"), got)
	require.NotContains(t, logs.String(), "level=ERROR")
}

func TestAStateRestoredToAnotherHistoryStopsTheLogInsteadOfForkingIt(t *testing.T) {
	src, st, logs := newSource(), newStores(), &syncBuf{}
	src.add("arena", 5)
	a, err := New(testConfig(logs), src, st)
	require.NoError(t, err)
	stop := run(a)
	waitSize(t, a, "arena", 5)
	stop()

	// The node's state goes back to seq 3, and the world goes on
	// differently from there.
	src.mu.Lock()
	src.events["arena"] = src.events["arena"][:3]
	src.mu.Unlock()
	src.addAs("arena", 4, "q")
	b, err := New(testConfig(logs), src, st)
	require.NoError(t, err)
	start(t, b)
	require.Eventually(t, func() bool {
		s, err := b.Status("arena")
		return err == nil && errors.Is(s.Err, audit.ErrDiverged)
	}, 10*time.Second, time.Millisecond)
	s, err := b.Status("arena")
	require.NoError(t, err)
	require.Equal(t, int64(5), s.Size, "nothing of the other history logged")
}

func TestAWorldWhoseFeedHasAGapReportsItAndIsRetried(t *testing.T) {
	src, st, logs := newSource(), newStores(), &syncBuf{}
	src.add("arena", 3)
	src.first["arena"] = 2 // seq 1 pruned before it was logged
	a, err := New(testConfig(logs), src, st)
	require.NoError(t, err)
	start(t, a)
	require.Eventually(t, func() bool {
		src.mu.Lock()
		defer src.mu.Unlock()
		return src.subs >= 3 // retried at every scan
	}, 10*time.Second, time.Millisecond)
	st2, err := a.Status("arena")
	require.NoError(t, err)
	require.ErrorIs(t, st2.Err, errGap)
	require.Zero(t, st2.Size)
	require.Equal(t, Stats{Worlds: 1, Stalled: 1, Settled: true}, a.Stats())
	require.Equal(t, 1, strings.Count(logs.String(), "stopped following"), "a lasting failure is logged once")

	// Once the feed holds seq 1 again, it catches up and clears the error.
	src.mu.Lock()
	src.first["arena"] = 1
	src.mu.Unlock()
	waitSize(t, a, "arena", 3)
	require.Eventually(t, func() bool {
		s, err := a.Status("arena")
		return err == nil && s.Err == nil
	}, 10*time.Second, time.Millisecond)
	require.Equal(t, Stats{Worlds: 1, Events: 3, Settled: true}, a.Stats())
}

func TestFailuresOfTheStoreAndTheFeedAreReported(t *testing.T) {
	src, st, logs := newSource(), newStores(), &syncBuf{}
	src.add("broken", 1)
	boom := errors.New("disk gone")
	st.fail["broken"] = boom
	a, err := New(testConfig(logs), src, st)
	require.NoError(t, err)
	_, err = a.Log("broken")
	require.ErrorIs(t, err, boom)
	require.Zero(t, a.Stats().Worlds, "a log that did not open is not counted")
	_, err = a.Checkpoint("broken")
	require.ErrorIs(t, err, boom)
	_, err = a.Sign("broken")
	require.ErrorIs(t, err, boom)
	_, err = a.Status("broken")
	require.ErrorIs(t, err, boom)

	// A subscription that cannot open, then an append that fails.
	src.add("arena", 2)
	src.subErr = boom
	start(t, a)
	require.Eventually(t, func() bool {
		s, err := a.Status("arena")
		return err == nil && errors.Is(s.Err, boom)
	}, 10*time.Second, time.Millisecond)
	src.mu.Lock()
	src.subErr = nil
	src.mu.Unlock()
	waitSize(t, a, "arena", 2)
	st.mu.Lock()
	f := st.m["arena"]
	st.mu.Unlock()
	f.set(nil, boom)
	src.add("arena", 1)
	require.Eventually(t, func() bool {
		s, err := a.Status("arena")
		return err == nil && errors.Is(s.Err, boom)
	}, 10*time.Second, time.Millisecond)
	require.Contains(t, logs.String(), "disk gone")
	require.Equal(t, 1, strings.Count(logs.String(), "audit log cannot be opened"), "retried at every scan, logged once")
}

func TestCheckpointsAreSignedOnDemandAndAtTheInterval(t *testing.T) {
	src, st, logs := newSource(), newStores(), &syncBuf{}
	src.add("arena", 4)
	cfg := testConfig(logs)

	// No key: the trees are kept, nothing is signed.
	a, err := New(cfg, src, st)
	require.NoError(t, err)
	_, err = a.Checkpoint("arena")
	require.ErrorIs(t, err, ErrNoKey)
	_, err = a.Sign("arena")
	require.ErrorIs(t, err, ErrNoKey)
	a.signAll() // nothing to do

	// Two keys during a rotation: both sign.
	oldK, oldV := key(t, "old")
	newK, newV := key(t, "new")
	cfg.Signers = []note.Signer{oldK, newK}
	cfg.SignInterval = time.Millisecond
	b, err := New(cfg, src, st)
	require.NoError(t, err)
	// Before Run: the log opens, the first checkpoint is signed on demand.
	msg, err := b.Checkpoint("arena")
	require.NoError(t, err)
	cp, signers, err := audit.OpenCheckpoint(msg, oldV, newV)
	require.NoError(t, err)
	require.Len(t, signers, 2)
	require.Zero(t, cp.Size) // nothing logged yet: Run was not started
	again, err := b.Checkpoint("arena")
	require.NoError(t, err)
	require.Equal(t, msg, again, "the newest signed checkpoint, not a new one")

	start(t, b)
	waitSize(t, b, "arena", 4)
	require.Eventually(t, func() bool { // the signer catches up
		msg, err := b.Checkpoint("arena")
		require.NoError(t, err)
		cp, _, err := audit.OpenCheckpoint(msg, newV)
		require.NoError(t, err)
		return cp.Size == 4
	}, 10*time.Second, time.Millisecond)
	// A tree that did not grow is not signed again.
	before, err := b.Checkpoint("arena")
	require.NoError(t, err)
	b.signAll()
	after, err := b.Checkpoint("arena")
	require.NoError(t, err)
	require.Equal(t, before, after)
	msg, err = b.Sign("arena")
	require.NoError(t, err)
	cp, _, err = audit.OpenCheckpoint(msg, oldV)
	require.NoError(t, err)
	require.Equal(t, want(t, src, "arena"), cp)
	stats := b.Stats()
	require.GreaterOrEqual(t, stats.Signed, uint64(3)) // on demand, at the interval, on demand
	require.Equal(t, 1, stats.Worlds)
}

// failSigner is a signer whose signatures fail.
type failSigner struct{ note.Signer }

func (failSigner) Sign([]byte) ([]byte, error) { return nil, errors.New("hsm offline") }

func TestSigningFailuresAreReportedAndLogged(t *testing.T) {
	src, st, logs := newSource(), newStores(), &syncBuf{}
	src.add("arena", 2)
	k, _ := key(t, "k")
	cfg := testConfig(logs)
	cfg.Signers = []note.Signer{failSigner{k}}
	a, err := New(cfg, src, st)
	require.NoError(t, err)
	_, err = a.Sign("arena")
	require.ErrorContains(t, err, "hsm offline")
	a.signAll()
	require.Contains(t, logs.String(), "audit checkpoint not signed")

	// A store that cannot be read: no root, no checkpoint.
	cfg.Signers = []note.Signer{k}
	b, err := New(cfg, src, st)
	require.NoError(t, err)
	l, err := b.Log("arena")
	require.NoError(t, err)
	require.NoError(t, l.Append(eventsOf(src, "arena")...))
	st.m["arena"].set(errors.New("bad sector"), nil)
	_, err = b.Checkpoint("arena")
	require.ErrorContains(t, err, "bad sector")
}

func eventsOf(src *source, world string) []*wire.Event {
	var out []*wire.Event
	for _, e := range src.events[world] {
		w := e.Wire()
		out = append(out, &w)
	}
	return out
}

func TestSaltsAreSignedWithTheNodesKeysOnly(t *testing.T) {
	cfg := testConfig(&syncBuf{})
	sn := audit.NewSaltsNote("arena", 3, 4, []byte(`{"world":"arena"}`))

	a, err := New(cfg, newSource(), newStores())
	require.NoError(t, err)
	_, err = a.SignSalts(sn)
	require.ErrorIs(t, err, ErrNoKey, "a node without an audit key serves its salts unsigned")

	oldK, oldV := key(t, "old")
	newK, newV := key(t, "new")
	cfg.Signers = []note.Signer{oldK, newK}
	b, err := New(cfg, newSource(), newStores())
	require.NoError(t, err)
	msg, err := b.SignSalts(sn)
	require.NoError(t, err)
	got, signers, err := audit.OpenSalts(msg, oldV, newV)
	require.NoError(t, err)
	require.Equal(t, sn, got)
	require.Len(t, signers, 2, "both keys sign during a rotation")
}
