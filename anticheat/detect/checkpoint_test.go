package detect

import (
	"bytes"
	"context"
	"encoding/binary"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/anticheat/corpus"
	"github.com/gsd-dev/gsd/fsm"
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
