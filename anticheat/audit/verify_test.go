package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/tlog"
)

// matchLog is a log of 20 events, its signed-and-opened checkpoint, its
// leaf hashes and its export.
type matchLog struct {
	cp     Checkpoint
	leaves []tlog.Hash
	lines  [][]byte
	events []*wire.Event
}

func newMatchLog(t *testing.T) matchLog {
	t.Helper()
	l, evs := newLog(t, "arena", 20)
	c, err := l.Checkpoint()
	require.NoError(t, err)
	s, v := testKeys(t, "gsd-audit")
	msg, err := SignCheckpoint(c, s)
	require.NoError(t, err)
	cp, _, err := OpenCheckpoint(msg, v)
	require.NoError(t, err)
	leaves, err := l.LeafHashes(1, 20)
	require.NoError(t, err)
	return matchLog{cp: cp, leaves: leaves, lines: export(t, evs), events: evs}
}

func (m matchLog) verify(t *testing.T, lines [][]byte, named bool) Report {
	t.Helper()
	var leaves []tlog.Hash
	if named {
		leaves = m.leaves
	}
	rep, err := VerifyLog(ndjson(lines), m.cp, leaves)
	require.NoError(t, err)
	require.Equal(t, named, rep.Named)
	return rep
}

// line returns the export line of e.
func line(t *testing.T, e wire.Event) []byte {
	b, err := json.Marshal(e)
	require.NoError(t, err)
	return b
}

func kinds(rep Report) []string {
	var out []string
	for _, p := range rep.Problems {
		out = append(out, p.String())
	}
	return out
}

func TestAnUntouchedExportVerifies(t *testing.T) {
	m := newMatchLog(t)
	for _, named := range []bool{false, true} {
		rep := m.verify(t, m.lines, named)
		require.True(t, rep.OK(), kinds(rep))
		require.Equal(t, 20, rep.Lines)
	}
	// Blank lines are skipped; events after the checkpoint are counted,
	// not checked.
	more := append(slices.Clone(m.lines), []byte(""), line(t, *events("arena", 21)[20]))
	rep := m.verify(t, more, true)
	require.True(t, rep.OK(), kinds(rep))
	require.Equal(t, 1, rep.Beyond)
}

func TestAModifiedEventIsFoundAndNamed(t *testing.T) {
	m := newMatchLog(t)
	e := *m.events[6]
	v := wire.Int(9999)
	e.Changes = []wire.Change{{Entity: e.Changes[0].Entity, Field: "hp", Op: "set", Value: &v, Version: e.Seq}}
	lines := slices.Clone(m.lines)
	lines[6] = line(t, e)

	rep := m.verify(t, lines, true)
	require.Equal(t, []string{"modified: seq 7 (line 7): its leaf is not the log's"}, kinds(rep))

	// Without the leaves the root finds it, and cannot say which.
	rep = m.verify(t, lines, false)
	require.Equal(t, []Problem{{Kind: Modified, Detail: "the events do not hash to the checkpoint's root; give the leaf hashes to name them"}}, rep.Problems)

	// A change of world is named either way.
	e = *m.events[2]
	e.World = "other"
	lines = slices.Clone(m.lines)
	lines[2] = line(t, e)
	rep = m.verify(t, lines, false)
	require.Equal(t, Problem{Kind: Modified, Seq: 3, Line: 3, Detail: `an event of world "other"`}, rep.Problems[1])
	rep = m.verify(t, lines, true)
	require.Equal(t, []string{"modified: seq 3 (line 3): its leaf is not the log's"}, kinds(rep))
}

// checkpointAt returns the checkpoint of the first n events of m's log.
func checkpointAt(t *testing.T, n int) Checkpoint {
	l, _ := newLog(t, "arena", n)
	c, err := l.Checkpoint()
	require.NoError(t, err)
	return c
}

func TestEarlierCheckpointsNarrowDownAModifiedEvent(t *testing.T) {
	m := newMatchLog(t)
	e := *m.events[11]
	e.Time++
	lines := slices.Clone(m.lines)
	lines[11] = line(t, e) // seq 12
	verify := func(sizes ...int) []string {
		var earlier []Checkpoint
		for _, n := range sizes {
			earlier = append(earlier, checkpointAt(t, n))
		}
		rep, err := VerifyLog(ndjson(lines), m.cp, nil, earlier...)
		require.NoError(t, err)
		return kinds(rep)
	}
	require.Equal(t, []string{"modified: seqs 11 to 15: an event changed after the checkpoint of 10 events agreed and by the one of 15; give the leaf hashes to name it"},
		verify(15, 5, 10))
	require.Equal(t, []string{"modified: seqs 1 to 13: an event changed after the checkpoint of 0 events agreed and by the one of 13; give the leaf hashes to name it"},
		verify(13))
	require.Equal(t, []string{"modified: seqs 12 to 20: an event changed after the checkpoint of 11 events agreed and by the one of 20; give the leaf hashes to name it"},
		verify(11, 20))
	require.Equal(t, []string{"modified: seq 12 (line 12): the checkpoints of 11 and 12 events differ by it"},
		verify(3, 11, 12, 17))

	for name, earlier := range map[string]Checkpoint{
		"other world": {Origin: "lobby", Size: 3},
		"empty":       {Origin: "arena"},
		"larger":      {Origin: "arena", Size: 21},
		"forked":      {Origin: "arena", Size: 20, Root: tlog.Hash{1}},
	} {
		_, err := VerifyLog(ndjson(lines), m.cp, nil, earlier)
		require.ErrorIs(t, err, ErrCheckpoint, name)
	}
	_, err := VerifyLog(ndjson(lines), m.cp, nil, checkpointAt(t, 4), Checkpoint{Origin: "arena", Size: 4})
	require.ErrorIs(t, err, ErrCheckpoint, "two of one size")
	rep, err := VerifyLog(ndjson(m.lines), m.cp, nil, checkpointAt(t, 4), checkpointAt(t, 4), m.cp)
	require.NoError(t, err, "the same checkpoint twice")
	require.True(t, rep.OK())
}

func TestARemovedEventIsFoundAndNamed(t *testing.T) {
	m := newMatchLog(t)
	lines := slices.Delete(slices.Clone(m.lines), 11, 12)
	for _, named := range []bool{false, true} {
		rep := m.verify(t, lines, named)
		require.Equal(t, []string{"removed: seq 12"}, kinds(rep), "named %v", named)
	}
	// The last one too: the checkpoint's size says it was there.
	rep := m.verify(t, m.lines[:19], false)
	require.Equal(t, []string{"removed: seq 20"}, kinds(rep))
	// A run of removed events is one problem.
	lines = append(slices.Clone(m.lines[:3]), m.lines[9:18]...)
	for _, named := range []bool{false, true} {
		rep := m.verify(t, lines, named)
		require.Equal(t, []string{"removed: seqs 4 to 9", "removed: seqs 19 to 20"}, kinds(rep), "named %v", named)
		require.Equal(t, Problem{Kind: Removed, Seq: 4, To: 9}, rep.Problems[0])
	}
}

func TestAnInsertedEventIsFoundAndNamed(t *testing.T) {
	m := newMatchLog(t)
	fake := *m.events[4]
	fake.Player = "mallory"
	fake.Changes = nil
	fake.Versions = nil
	// Inserted after the genuine seq 5.
	lines := slices.Insert(slices.Clone(m.lines), 5, line(t, fake))
	for _, named := range []bool{false, true} {
		rep := m.verify(t, lines, named)
		require.Len(t, rep.Problems, 1, "named %v: %v", named, kinds(rep))
		p := rep.Problems[0]
		require.Equal(t, Inserted, p.Kind)
		require.Equal(t, uint64(5), p.Seq)
		require.Equal(t, 6, p.Line)
	}
	// Inserted before it: the leaves tell which is genuine; without them,
	// both lines are named.
	lines = slices.Insert(slices.Clone(m.lines), 4, line(t, fake))
	rep := m.verify(t, lines, true)
	require.Equal(t, []string{"inserted: seq 5 (line 5): not an event of the log"}, kinds(rep))
	rep = m.verify(t, lines, false)
	require.Equal(t, []string{
		"modified: the events do not hash to the checkpoint's root; give the leaf hashes to name them",
		"inserted: seq 5 (line 6): seq 5 again (first at line 5); either may be the inserted one",
	}, kinds(rep))

	// A copy of a genuine event.
	lines = append(slices.Clone(m.lines), m.lines[2])
	rep = m.verify(t, lines, true)
	require.Equal(t, []string{"inserted: seq 3 (line 21): a copy of the event at line 3"}, kinds(rep))
	rep = m.verify(t, lines, false)
	require.Equal(t, []string{"inserted: seq 3 (line 21): seq 3 again (first at line 3)"}, kinds(rep))

	// Inserted with the later events renumbered: every renumbered event is
	// named, and the one pushed past the checkpoint is beyond it.
	renumbered := slices.Clone(m.events[:5])
	renumbered = append(renumbered, &fake)
	for _, e := range m.events[5:] {
		c := *e
		c.Seq++
		renumbered = append(renumbered, &c)
	}
	fake.Seq = 6
	rep = m.verify(t, export(t, renumbered), true)
	require.Len(t, rep.Problems, 15)
	for i, p := range rep.Problems {
		require.Equal(t, Modified, p.Kind)
		require.Equal(t, uint64(6+i), p.Seq)
	}
	require.Equal(t, 1, rep.Beyond)
}

func TestAReorderedEventIsFoundAndNamed(t *testing.T) {
	m := newMatchLog(t)
	// Seq 15 moved up to before seq 3: only it is out of place.
	lines := slices.Clone(m.lines)
	moved := lines[14]
	lines = slices.Delete(lines, 14, 15)
	lines = slices.Insert(lines, 2, moved)
	for _, named := range []bool{false, true} {
		rep := m.verify(t, lines, named)
		require.Equal(t, []string{"reordered: seq 15 (line 3): out of its place in seq order"}, kinds(rep), "named %v", named)
	}
	// Two neighbours swapped: one of them is named.
	lines = slices.Clone(m.lines)
	lines[8], lines[9] = lines[9], lines[8]
	rep := m.verify(t, lines, true)
	require.Len(t, rep.Problems, 1)
	require.Equal(t, Reordered, rep.Problems[0].Kind)
	require.Contains(t, []uint64{9, 10}, rep.Problems[0].Seq)
}

func TestLinesThatAreNotEventsAreNamed(t *testing.T) {
	m := newMatchLog(t)
	lines := append(slices.Clone(m.lines), []byte(`{"code":"archive_gap","error":"gone"}`), []byte("{"),
		[]byte(`{"world":"arena"}`), []byte(`{"world":"arena","seq":21} {}`))
	// A key the leaf does not cover, added to a genuine event.
	lines[4] = append(bytes.TrimSuffix(lines[4], []byte("}")), `,"winner":"mallory"}`...)
	rep := m.verify(t, lines, false)
	require.Equal(t, []string{
		`malformed (line 5): not an event: json: unknown field "winner"`,
		`malformed (line 21): not an event: json: unknown field "code"`,
		"malformed (line 22): not an event: unexpected EOF",
		"malformed (line 23): not an event: no seq",
		"malformed (line 24): not an event: more than one JSON value",
		"removed: seq 5",
	}, kinds(rep))
}

func TestLeafHashesThatAreNotTheCheckpointsAreRefused(t *testing.T) {
	m := newMatchLog(t)
	_, err := VerifyLog(ndjson(m.lines), m.cp, m.leaves[:19])
	require.ErrorIs(t, err, ErrLeaves)
	forged := slices.Clone(m.leaves)
	forged[3] = tlog.Hash{1}
	_, err = VerifyLog(ndjson(m.lines), m.cp, forged)
	require.ErrorIs(t, err, ErrLeaves)
}

func TestVerifyLogReportsUnreadableLogs(t *testing.T) {
	m := newMatchLog(t)
	_, err := VerifyLog(ndjson(m.lines), Checkpoint{Origin: "arena", Size: MaxVerifyEvents + 1}, nil)
	require.ErrorContains(t, err, "outside the 0 to 67108864 one verification holds")
	_, err = VerifyLog(ndjson(m.lines), Checkpoint{Origin: "arena", Size: -1}, nil)
	require.ErrorContains(t, err, "a checkpoint of -1 events")
	long := strings.Repeat("x", MaxLineBytes+1)
	_, err = VerifyLog(strings.NewReader(long), m.cp, nil)
	require.ErrorContains(t, err, "read log")
	boom := errors.New("boom")
	_, err = VerifyLog(errReader{boom}, m.cp, nil)
	require.ErrorIs(t, err, boom)
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

func TestLeafHashFilesRoundTrip(t *testing.T) {
	m := newMatchLog(t)
	b := EncodeLeafHashes(m.leaves)
	require.Len(t, b, 20*32)
	got, err := DecodeLeafHashes(b)
	require.NoError(t, err)
	require.Equal(t, m.leaves, got)
	_, err = DecodeLeafHashes(b[:33])
	require.ErrorIs(t, err, ErrLeaves)
	got, err = DecodeLeafHashes(nil)
	require.NoError(t, err)
	require.NotNil(t, got, "an empty file is the leaves of an empty log")
	rep, err := VerifyLog(bytes.NewReader(nil), Checkpoint{Origin: "arena", Root: rootOf(nil)}, got)
	require.NoError(t, err)
	require.True(t, rep.OK())
}

func TestProblemsReadAsOneLine(t *testing.T) {
	require.Equal(t, "removed: seq 4", Problem{Kind: Removed, Seq: 4}.String())
	require.Equal(t, "malformed (line 2): x", Problem{Kind: Malformed, Line: 2, Detail: "x"}.String())
}

// FuzzVerifyLog: whatever the export and the leaves file, VerifyLog
// reports problems or an error; it never panics.
func FuzzVerifyLog(f *testing.F) {
	l, evs := newLog(f, "arena", 6)
	cp, err := l.Checkpoint()
	if err != nil {
		f.Fatal(err)
	}
	leaves, err := l.LeafHashes(1, 6)
	if err != nil {
		f.Fatal(err)
	}
	good := bytes.Join(export(f, evs), []byte("\n"))
	f.Add(good, EncodeLeafHashes(leaves))
	f.Add(good, []byte(nil))
	f.Add([]byte(`{"world":"arena","seq":3}`+"\n"+`{"world":"arena","seq":1}`), EncodeLeafHashes(leaves))
	f.Fuzz(func(t *testing.T, log, leafFile []byte) {
		var hs []tlog.Hash
		if len(leafFile) > 0 {
			var err error
			if hs, err = DecodeLeafHashes(leafFile); err != nil {
				return
			}
		}
		rep, err := VerifyLog(bytes.NewReader(log), cp, hs, Checkpoint{Origin: "arena", Size: 3, Root: leaves[2]})
		if err == nil && rep.OK() && rep.Lines < 6 {
			t.Fatalf("a log of %d events passed a checkpoint of 6", rep.Lines)
		}
	})
}
