package detect

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

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
	for i := range flags {
		flags[i].Restored = true
	}
	require.Equal(t, flags, again, "handed to the sink again, marked restored: a queue may have lost it at the stop")
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
