package detect

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/anticheat/corpus"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// memCheckpoints keeps a checkpoint in memory; once crashed, it saves
// nothing more (the node died before its next save).
type memCheckpoints struct {
	mu      sync.Mutex
	b       []byte
	saves   int
	crashed bool
	err     error // Load's and Save's
}

func (m *memCheckpoints) Load() ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return bytes.Clone(m.b), m.err
}

func (m *memCheckpoints) Save(b []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return m.err
	}
	if !m.crashed {
		m.b, m.saves = bytes.Clone(b), m.saves+1
	}
	return nil
}

func (m *memCheckpoints) saved() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.saves
}

// marked feeds evs to d as its Runner's followers would, each world from
// its mark on (an event before it is skipped, as a subscription that
// starts early), and marks where each ends.
func marked(t *testing.T, d *Detector, evs []*fsm.Event) {
	for _, ev := range evs {
		d.mu.Lock()
		next := d.marks[ev.World].next
		d.mu.Unlock()
		_, _, err := d.observeRead(context.Background(), []*fsm.Event{ev}, next, 7)
		require.NoError(t, err)
	}
}

func all(string) bool { return true }

func corpusEvents(t *testing.T) []*fsm.Event {
	var evs []*fsm.Event
	_, err := corpus.Generate(corpus.A(300), func(ev *fsm.Event) { evs = append(evs, ev) })
	require.NoError(t, err)
	return evs
}

// A node that crashed after a checkpoint, having counted events after
// it, starts from the checkpoint and replays the events after its seq
// per world from the archive (read from the start: those up to the
// checkpoint are skipped): it counts every event once, so its state, to
// the byte, and its flags are those of a node never stopped. Replaying
// the archive from seq 1 over the checkpoint instead counts the events
// before it twice.
func TestACrashBetweenACheckpointAndLaterEventsCountsNothingTwice(t *testing.T) {
	evs := corpusEvents(t)
	cut, crash := len(evs)/3, 2*len(evs)/3
	cfg := DefaultConfig()

	never := newDetector(cfg)
	marked(t, never, evs[:cut])
	neverFlags, ckpt := never.checkpoint(all)
	require.NotEmpty(t, ckpt)
	marked(t, never, evs[cut:crash]) // the crashed node counted these too: lost
	marked(t, never, evs[crash:])
	neverFlags = append(neverFlags, never.Evaluate()...)

	restarted := newDetector(cfg)
	marks, flags, err := restarted.restore(ckpt)
	require.NoError(t, err)
	require.NotEmpty(t, marks)
	require.Equal(t, neverFlags[:len(flags)], flags, "the flags before the checkpoint come back")
	marked(t, restarted, evs) // the archive from its start
	flags = append(flags, restarted.Evaluate()...)
	require.Equal(t, neverFlags, flags)
	_, want := never.checkpoint(all)
	_, got := restarted.checkpoint(all)
	require.Equal(t, want, got, "the same counts, to the byte")

	twice := newDetector(cfg)
	_, _, err = twice.restore(ckpt)
	require.NoError(t, err)
	clear(twice.marks) // no marks: the archive replayed from seq 1
	marked(t, twice, evs)
	twice.Evaluate()
	_, doubled := twice.checkpoint(all)
	require.NotEqual(t, want, doubled)
}

func TestACheckpointEncodesTheSameStateToTheSameBytes(t *testing.T) {
	evs := corpusEvents(t)
	d := newDetector(DefaultConfig())
	marked(t, d, evs[:len(evs)/2])
	_, b := d.checkpoint(all)
	again := newDetector(DefaultConfig())
	_, _, err := again.restore(b)
	require.NoError(t, err)
	_, b2 := again.checkpoint(all)
	require.Equal(t, b, b2)
	t.Logf("checkpoint of %d players after %d events: %d bytes", len(d.players), len(evs)/2, len(b))
	// Compact: a string table, varints; under 1 KB a player.
	require.Less(t, len(b), 1000*len(d.players))
}

// checkpointOf returns a checkpoint of a detector that saw some
// transfers and a flag.
func checkpointOf(t *testing.T) []byte {
	d := newDetector(small())
	src := newSource("w")
	src.transfers("w", "f", "m", 6)
	marked(t, d, src.events["w"])
	marked(t, d, session("s", "p", 0, fast)[:4]) // a player, appearances, a session
	flags, b := d.checkpoint(all)
	require.Len(t, flags, 1)
	return b
}

// reframe returns b with its checksum made right again.
func reframe(b []byte) []byte {
	body := b[:len(b)-4]
	return binary.BigEndian.AppendUint32(bytes.Clone(body), crc32.Checksum(body, castagnoli))
}

// A damaged checkpoint is refused with ErrCheckpoint and leaves the
// detector as it was, however it is damaged: any byte changed, any
// length cut (with a checksum made right, so the decoder's own checks
// are tried too), never a panic.
func TestADamagedCheckpointIsRefusedAndLeavesTheDetectorAsItWas(t *testing.T) {
	b := checkpointOf(t)
	d := newDetector(small())
	d.Observe(&fsm.Event{World: "x", Seq: 1, Player: "p", Status: fsm.StatusApplied, Changes: []fsm.Change{set("p", "x", 1)}})
	refused := func(c []byte) {
		t.Helper()
		marks, flags, err := d.restore(c)
		require.ErrorIs(t, err, ErrCheckpoint)
		require.Nil(t, marks)
		require.Nil(t, flags)
		require.Len(t, d.players, 1)
		require.Contains(t, d.players, "p")
	}
	for i := range b {
		c := bytes.Clone(b)
		c[i] ^= 0x41
		refused(c)
	}
	for n := range len(b) - 4 {
		refused(reframe(append(bytes.Clone(b[:n]), 0, 0, 0, 0)))
	}
	refused(nil)
	refused(reframe(append(bytes.Clone(b[:len(b)-4]), 1, 0, 0, 0, 0))) // a byte after the body
}

// craft returns a checkpoint of small()'s config whose string table is
// strs and body what body writes.
func craft(strs []string, body func(e *cpEnc)) []byte {
	e := &cpEnc{ids: map[string]uint64{}}
	for _, s := range strs {
		e.str(s)
	}
	e.body = nil
	body(e)
	return e.frame(fingerprint(small()))
}

func TestACheckpointWithOutOfRangeValuesIsRefused(t *testing.T) {
	head := func(e *cpEnc) { e.uint(1); e.uint(1) } // events, popAt
	for name, c := range map[string][]byte{
		"a count": craft(nil, func(e *cpEnc) { head(e); e.uint(math.MaxUint64) }),
		"a length": craft(nil, func(e *cpEnc) {
			head(e)
			e.num(0)
			e.num(0)
			e.float(0)
			e.num(1000) // marks, more than the bytes left
		}),
		"a name": craft([]string{"w"}, func(e *cpEnc) {
			head(e)
			e.num(0)
			e.num(0)
			e.float(0)
			e.num(1)
			e.uint(5) // no such string
			e.uint(1)
			e.uint(2)
		}),
		"too short": append([]byte(checkpointMagic), 1),
	} {
		t.Run(name, func(t *testing.T) {
			d := newDetector(small())
			_, _, err := d.restore(c)
			require.ErrorIs(t, err, ErrCheckpoint)
		})
	}
}

func TestACheckpointOfAnotherVersionOrConfigIsRefused(t *testing.T) {
	b := checkpointOf(t)
	v := bytes.Clone(b)
	v[len(checkpointMagic)] = checkpointVersion + 1
	_, _, err := newDetector(small()).restore(reframe(v))
	require.ErrorIs(t, err, ErrCheckpoint)
	require.ErrorContains(t, err, "version 2")

	other := small()
	other.Funnel.MinEach++
	_, _, err = newDetector(other).restore(b)
	require.ErrorIs(t, err, ErrCheckpoint)
	require.ErrorContains(t, err, "thresholds")

	same := small()
	same.Every, same.Scan, same.Checkpoint = 3, time.Hour, time.Hour // how often, not what is counted
	_, _, err = newDetector(same).restore(b)
	require.NoError(t, err)

	_, _, err = newDetector(small()).restore([]byte("not a checkpoint at all"))
	require.ErrorContains(t, err, "not a detectors' checkpoint")
}

// A follower stopped by its Runner marks nothing after: a read it got
// after the cancel is not observed.
func TestAStoppedFollowerObservesNoReadAfterItsCancel(t *testing.T) {
	d := newDetector(small())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	next, n, err := d.observeRead(ctx, []*fsm.Event{{World: "w", Seq: 1, Status: fsm.StatusApplied}}, 1, 3)
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, uint64(1), next)
	require.Zero(t, n)
	require.Empty(t, d.marks)
}

func TestFileKeepsACheckpointAndReplacesItWhole(t *testing.T) {
	dir := t.TempDir()
	f := File{Path: filepath.Join(dir, "detect.ckpt")}
	b, err := f.Load()
	require.NoError(t, err)
	require.Nil(t, b, "no file, no checkpoint")
	require.NoError(t, f.Save([]byte("one")))
	require.NoError(t, f.Save([]byte("two")))
	b, err = f.Load()
	require.NoError(t, err)
	require.Equal(t, []byte("two"), b)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temporary file left")

	require.Error(t, File{Path: filepath.Join(dir, "no", "such", "dir")}.Save(b))
	busy := filepath.Join(dir, "busy") // a directory in the way: the rename fails
	require.NoError(t, os.MkdirAll(filepath.Join(busy, "x"), 0o700))
	require.Error(t, File{Path: busy}.Save(b))
	_, err = os.Stat(busy + ".tmp")
	require.ErrorIs(t, err, os.ErrNotExist, "the temporary file is removed")
	_, err = File{Path: busy}.Load()
	require.Error(t, err)
}

// runFor runs a Runner of a detector of cfg over src with cp until done
// says so, then stops it (which saves a checkpoint) and returns its
// flags.
func runFor(t *testing.T, cfg Config, src Source, cp Checkpoints, log *bytes.Buffer, done func(*Runner) bool) []Flag {
	d, err := New(cfg)
	require.NoError(t, err)
	var mem Memory
	r, err := NewRunner(d, src, &mem, slog.New(slog.NewTextHandler(log, nil)))
	require.NoError(t, err)
	if cp != nil {
		r.Checkpoints = cp
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { defer close(stopped); r.Run(ctx) }()
	require.Eventually(t, func() bool { return done(r) }, 10*time.Second, time.Millisecond)
	cancel()
	<-stopped
	for _, f := range d.Evaluate() {
		mem.Flag(f)
	}
	return mem.Flags()
}

func fast1() Config {
	c := small()
	c.Every, c.Scan, c.Checkpoint = 1, time.Millisecond, time.Hour
	return c
}

// matches adds to world's feed n matches between a and b, the winner
// alternating (win-trading).
func (s *source) matches(world, a, b string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		seq := uint64(len(s.events[world]) + 1)
		w, l := a, b
		if seq%2 == 1 {
			w, l = b, a
		}
		s.events[world] = append(s.events[world], &fsm.Event{World: world, Seq: seq, Player: "server", Status: fsm.StatusApplied,
			Changes: []fsm.Change{{Entity: w, Field: "wins", Op: fsm.OpIncr, Value: fsm.Int(1)}, {Entity: l, Field: "losses", Op: fsm.OpIncr, Value: fsm.Int(1)}}})
	}
}

// deleteWorld deletes world and its events (its archive goes with it).
func (s *source) deleteWorld(world string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, w := range s.worlds {
		if w == world {
			s.worlds = append(s.worlds[:i], s.worlds[i+1:]...)
			break
		}
	}
	delete(s.events, world)
}

func markOf(r *Runner, world string) uint64 {
	r.d.mu.Lock()
	defer r.d.mu.Unlock()
	return r.d.marks[world].next
}

// Collusion across matches: a funnel and a win-trading pair whose first
// transfers and matches were in a match world deleted before the node
// restarted, the rest in the next match. With checkpoints both are
// flagged after the restart (and the deleted world's mark is dropped);
// rebuilt from the archive alone, the deleted world's half is gone and
// neither is.
func TestCollusionInADeletedMatchWorldIsStillFlaggedAfterARestart(t *testing.T) {
	for _, checkpoints := range []bool{true, false} {
		t.Run(map[bool]string{true: "checkpointed", false: "rebuilt from the archive"}[checkpoints], func(t *testing.T) {
			cp := &memCheckpoints{}
			src := newSource("m1", "lobby")
			src.transfers("m1", "f", "m", 3)
			src.matches("m1", "a", "b", 4)
			src.transfers("lobby", "x", "y", 1)
			var log bytes.Buffer
			before := runFor(t, fast1(), src, cp, &log, func(r *Runner) bool { return markOf(r, "m1") == 8 && markOf(r, "lobby") == 2 })
			require.Empty(t, before, "under the thresholds in one match")
			require.Equal(t, 1, cp.saved(), "saved at the stop")

			src.deleteWorld("m1") // with its archive
			src.worlds = append(src.worlds, "m2")
			src.transfers("m2", "f", "m", 3)
			src.matches("m2", "a", "b", 4)
			var store Checkpoints = cp
			if !checkpoints {
				store = nil
			}
			after := runFor(t, fast1(), src, store, &log, func(r *Runner) bool { return markOf(r, "m2") == 8 })
			got := players(append(only(after, DetFunnel), only(after, DetWinTrade)...))
			if !checkpoints {
				require.Empty(t, got)
				return
			}
			require.Equal(t, []string{"f+m", "a+b"}, got)
			require.Equal(t, uint64(2), src.subscriptions("lobby")[1], "the lobby followed from after the checkpoint's seq")
			d := newDetector(fast1())
			marks, _, err := d.restore(cp.b)
			require.NoError(t, err)
			require.NotContains(t, marks, "m1", "a deleted world's mark is dropped, its counts kept")
			require.Equal(t, 6, d.edges[pairKey{"f", "m"}].n)
		})
	}
}

// A player's statistics across matches: one session in a match world
// deleted before the restart, one after. With checkpoints the player is
// flagged over both (as an uninterrupted node flags them); rebuilt from
// the archive, the second alone is under the threshold.
func TestAPlayersSessionInADeletedMatchWorldStillCountsAfterARestart(t *testing.T) {
	for _, checkpoints := range []bool{true, false} {
		t.Run(map[bool]string{true: "checkpointed", false: "rebuilt from the archive"}[checkpoints], func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Every, cfg.Scan = 1, time.Millisecond
			cp := &memCheckpoints{}
			src := newSource("m1")
			src.events["m1"] = session("m1", "p", 0, fast)
			var log bytes.Buffer
			before := runFor(t, cfg, src, cp, &log, func(r *Runner) bool { return markOf(r, "m1") == 25 })
			require.Empty(t, only(before, DetReaction))

			src.deleteWorld("m1")
			src.worlds = []string{"m2"}
			src.events["m2"] = session("m2", "p", hour, fast)
			var store Checkpoints = cp
			if !checkpoints {
				store = nil
			}
			after := runFor(t, cfg, src, store, &log, func(r *Runner) bool { return markOf(r, "m2") == 25 })
			if !checkpoints {
				require.Empty(t, only(after, DetReaction))
				return
			}
			require.Equal(t, []string{"p"}, players(only(after, DetReaction)))
		})
	}
}

// A node that crashed after its checkpoint (its later saves lost) starts
// from it and reads each world from the seq after the checkpoint's: the
// events since are counted once; a world deleted and created again since
// (a new incarnation) is read from its seq 1.
func TestARunnerRestartedAfterACrashReadsOnlyTheEventsAfterItsCheckpoint(t *testing.T) {
	cp := &memCheckpoints{}
	src := newSource("w", "again")
	src.transfers("w", "f", "m", 4)
	src.transfers("again", "g", "n", 2)
	var log bytes.Buffer
	runFor(t, fast1(), src, cp, &log, func(r *Runner) bool { return markOf(r, "w") == 5 && markOf(r, "again") == 3 })
	cp.crashed = true
	src.transfers("w", "f", "m", 3)
	runFor(t, fast1(), src, cp, &log, func(r *Runner) bool { return markOf(r, "w") == 8 }) // counted, then lost

	src.transfers("w", "f", "m", 2)
	src.recreate("again", "h", "o", 2)
	var r2 *Runner
	runFor(t, fast1(), src, cp, &log, func(r *Runner) bool {
		r2 = r
		return markOf(r, "w") == 10 && transfersSeen(r, "h", "o") == 2
	})
	require.Equal(t, 9, transfersSeen(r2, "f", "m"), "every transfer once")
	require.Equal(t, 2, transfersSeen(r2, "g", "n"), "the old incarnation's counts kept")
	subs := src.subscriptions("w")
	require.Equal(t, []uint64{1, 5, 5}, subs, "each restart from the checkpoint's seq")
	require.Equal(t, uint64(1), src.subscriptions("again")[len(src.subscriptions("again"))-1], "a new incarnation from its start")
}

// A damaged checkpoint file is logged and the Runner rebuilds its counts
// from the archive, from seq 1: the node runs on.
func TestACorruptCheckpointFileIsReportedAndTheRunnerRebuildsFromTheArchive(t *testing.T) {
	for name, damage := range map[string]func([]byte) []byte{
		"a flipped byte": func(b []byte) []byte { b[len(b)/2] ^= 1; return b },
		"truncated":      func(b []byte) []byte { return b[:len(b)/2] },
		"garbage":        func([]byte) []byte { return []byte("\x00\x01garbage") },
	} {
		t.Run(name, func(t *testing.T) {
			f := File{Path: filepath.Join(t.TempDir(), "detect.ckpt")}
			src := newSource("w")
			src.transfers("w", "f", "m", 4)
			var log bytes.Buffer
			runFor(t, fast1(), src, f, &log, func(r *Runner) bool { return markOf(r, "w") == 5 })
			b, err := f.Load()
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(f.Path, damage(b), 0o600))

			log.Reset()
			var r2 *Runner
			runFor(t, fast1(), src, f, &log, func(r *Runner) bool { r2 = r; return markOf(r, "w") == 5 })
			require.Contains(t, log.String(), "checkpoint unusable")
			require.Contains(t, log.String(), "level=ERROR")
			require.Equal(t, 4, transfersSeen(r2, "f", "m"))
			require.Equal(t, uint64(1), src.subscriptions("w")[1], "rebuilt from seq 1")
			b, err = f.Load()
			require.NoError(t, err)
			_, _, err = newDetector(fast1()).restore(b)
			require.NoError(t, err, "a good checkpoint saved again")
		})
	}
}

func TestARunnerLogsAndCountsACheckpointItCannotLoadOrSave(t *testing.T) {
	cp := &memCheckpoints{err: errors.New("disk on fire")}
	src := newSource("w")
	src.transfers("w", "f", "m", 2)
	d, err := New(fast1())
	require.NoError(t, err)
	var log bytes.Buffer
	r, err := NewRunner(d, src, &Memory{}, slog.New(slog.NewTextHandler(&log, nil)))
	require.NoError(t, err)
	r.Checkpoints = cp
	r.Metrics, err = NewMetrics(prometheus.NewRegistry())
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { defer close(stopped); r.Run(ctx) }()
	require.Eventually(t, func() bool { return markOf(r, "w") == 3 }, 10*time.Second, time.Millisecond)
	cancel()
	<-stopped
	require.Contains(t, log.String(), "checkpoint unusable")
	require.Contains(t, log.String(), "checkpoint not saved")
	require.Equal(t, 2, strings.Count(log.String(), "disk on fire"))
	require.Equal(t, 1.0, testutil.ToFloat64(r.Metrics.checkpoints.WithLabelValues("load")))
	require.Equal(t, 1.0, testutil.ToFloat64(r.Metrics.checkpoints.WithLabelValues("save")))
	require.Equal(t, 2.0, testutil.ToFloat64(r.Metrics.observed), "the events observed")
}

// Periodic checkpoints, and a flag's incarnation: that of the world its
// evidence is in, as the Runner followed it, handed out again from the
// checkpoint after a restart.
func TestARunnerCheckpointsPeriodicallyAndItsFlagsNameTheirWorldsIncarnation(t *testing.T) {
	cp := &memCheckpoints{}
	src := newSource("w")
	src.inc["w"] = 42
	src.transfers("w", "f", "m", 6)
	cfg := fast1()
	cfg.Checkpoint = time.Millisecond
	var log bytes.Buffer
	flags := runFor(t, cfg, src, cp, &log, func(r *Runner) bool { return cp.saved() >= 3 && markOf(r, "w") == 7 })
	require.Len(t, flags, 1)
	require.Equal(t, uint64(42), flags[0].Incarnation)

	src.deleteWorld("w")
	again := runFor(t, fast1(), src, cp, &log, func(*Runner) bool { return true })
	require.Equal(t, flags, again, "handed to the sink again: a queue may have lost it at the stop")
	require.Contains(t, log.String(), "restored from their checkpoint")
}

// Flags that the checkpoint's own evaluation raises go to the sink too.
func TestARunnerHandsOutTheFlagsItsCheckpointRaises(t *testing.T) {
	src := newSource("w")
	src.transfers("w", "f", "m", 6)
	c := fast1()
	c.Every, c.Scan = 1000, time.Hour // no evaluation but the checkpoint's
	d, err := New(c)
	require.NoError(t, err)
	var mem Memory
	r, err := NewRunner(d, src, &mem, slog.Default())
	require.NoError(t, err)
	r.Checkpoints = &memCheckpoints{}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { defer close(stopped); r.Run(ctx) }()
	require.Eventually(t, func() bool { return markOf(r, "w") == 7 }, 10*time.Second, time.Millisecond)
	require.Empty(t, mem.Flags())
	cancel()
	<-stopped
	require.Equal(t, []string{"f+m"}, players(mem.Flags()))
}

// ignoring is a feed that hands out its events whatever its context.
type ignoring []*fsm.Event

func (s ignoring) Next(context.Context) ([]*fsm.Event, error) { return s, nil }

func TestFollowObservesNothingOnceItsContextEnded(t *testing.T) {
	d := newDetector(small())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	src := newSource("w")
	src.transfers("w", "f", "m", 2)
	require.ErrorIs(t, d.Follow(ctx, ignoring(src.events["w"]), &Memory{}), context.Canceled)
	require.Empty(t, d.edges)
}

// BenchmarkCheckpoint encodes and restores the state of corpus A's first
// half (418 players): the time a checkpoint holds the detector's lock,
// and a restart's.
func BenchmarkCheckpoint(b *testing.B) {
	var evs []*fsm.Event
	_, err := corpus.Generate(corpus.A(300), func(ev *fsm.Event) { evs = append(evs, ev) })
	require.NoError(b, err)
	d := newDetector(DefaultConfig())
	for _, ev := range evs[:len(evs)/2] {
		_, _, err := d.observeRead(context.Background(), []*fsm.Event{ev}, 0, 1)
		require.NoError(b, err)
	}
	_, ckpt := d.checkpoint(all)
	b.Run("encode", func(b *testing.B) {
		for b.Loop() {
			d.mu.Lock()
			d.encode()
			d.mu.Unlock()
		}
		b.ReportMetric(float64(len(ckpt)), "bytes")
	})
	b.Run("restore", func(b *testing.B) {
		for b.Loop() {
			if _, _, err := newDetector(DefaultConfig()).restore(ckpt); err != nil {
				b.Fatal(err)
			}
		}
	})
}
