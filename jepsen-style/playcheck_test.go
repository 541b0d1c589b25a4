package jepsen

import (
	"strings"
	"testing"

	"github.com/gsd-dev/gsd/wire"
)

// Hand-made play records: the play checks must reject a duplicate, a
// reordering, a gap in the critical events, an invented event or delta
// value and a counter off its bounds, and accept the legal cases (bulk
// events coalesced away, deltas skipping intermediate values).

func logEv(seq uint64, player string, cseq uint64, prio string, sets ...any) wire.Event {
	ev := wire.Event{World: "w", Seq: seq, Player: player, ClientSeq: cseq, Priority: prio, Status: "applied"}
	for i := 0; i+2 < len(sets); i += 3 {
		v := wire.Int(sets[i+2].(int64))
		ev.Changes = append(ev.Changes, wire.Change{Entity: sets[i].(string), Field: sets[i+1].(string), Op: "set", Value: &v, Version: seq})
	}
	return ev
}

func got(ev wire.Event) PlayEvent {
	return PlayEvent{Seq: ev.Seq, Player: ev.Player, ClientSeq: ev.ClientSeq, Priority: ev.Priority, Status: ev.Status}
}

func delta(seq uint64, entity, field string, v int64, ver uint64) PlayEvent {
	val := wire.Int(v)
	return PlayEvent{Seq: seq, Delta: true, Changes: []wire.Change{{Entity: entity, Field: field, Op: "set", Value: &val, Version: ver}}}
}

// testLog: seqs 1..6; 3 and 4 are bulk sets of ps0.x (coalesced), the rest critical.
func testLog() []wire.Event {
	return []wire.Event{
		logEv(1, "p0", 1, "critical"),
		logEv(2, "q0", 1, "critical"),
		logEv(3, "q0", 2, "bulk", "ps0", "x", int64(30)),
		logEv(4, "q0", 3, "bulk", "ps0", "x", int64(40)),
		logEv(5, "p1", 1, "critical"),
		logEv(6, "q0", 4, "critical"),
	}
}

func playProblems(evs ...PlayEvent) []string {
	return CheckPlaySession("q0", &PlaySession{ID: "s1", Events: evs}, testLog())
}

func TestPlayCheckAcceptsCoalescedSession(t *testing.T) {
	l := testLog()
	// The delta skips the intermediate value 30 and carries the latest.
	if p := playProblems(got(l[0]), got(l[1]), delta(4, "ps0", "x", 40, 4), got(l[4]), got(l[5])); len(p) != 0 {
		t.Fatalf("a legal session was rejected: %v", p)
	}
	// Bulk events sent individually (coalescing off) are fine too, and a
	// session that starts later is checked from its first event.
	if p := playProblems(got(l[2]), got(l[3]), got(l[4]), got(l[5])); len(p) != 0 {
		t.Fatalf("a legal session was rejected: %v", p)
	}
	if p := playProblems(); len(p) != 0 {
		t.Fatalf("an empty session was rejected: %v", p)
	}
}

func requireProblem(t *testing.T, probs []string, want string) {
	t.Helper()
	for _, p := range probs {
		if strings.Contains(p, want) {
			return
		}
	}
	t.Fatalf("problems %v: none mentions %q", probs, want)
}

func TestPlayCheckRejectsDuplicateAndReorder(t *testing.T) {
	l := testLog()
	requireProblem(t, playProblems(got(l[0]), got(l[1]), got(l[1]), got(l[4])), "duplicate or out of order")
	requireProblem(t, playProblems(got(l[0]), got(l[4]), got(l[1])), "duplicate or out of order")
}

func TestPlayCheckRejectsGap(t *testing.T) {
	l := testLog()
	// Critical event 5 is missing although the session covered up to 6.
	requireProblem(t, playProblems(got(l[0]), got(l[1]), got(l[5])), "never returned (gap)")
	// A delta covering seq 5 also proves the session passed it.
	requireProblem(t, playProblems(got(l[0]), got(l[1]), delta(5, "ps0", "x", 40, 4)), "never returned (gap)")
}

func TestPlayCheckRejectsInventedEvents(t *testing.T) {
	l := testLog()
	wrong := got(l[1])
	wrong.ClientSeq = 9
	requireProblem(t, playProblems(got(l[0]), wrong), "the log has q0/1")
	requireProblem(t, playProblems(got(l[0]), PlayEvent{Seq: 3, Player: "q0", ClientSeq: 2, Status: "applied"}, PlayEvent{Seq: 99, Player: "x", Status: "applied"}), "not in the log")
	// A delta value the log never set at that version, one at a version
	// with no event, and one beyond the seq the delta covers.
	requireProblem(t, playProblems(got(l[0]), delta(4, "ps0", "x", 31, 3)), "does not set that")
	requireProblem(t, playProblems(got(l[0]), delta(4, "ps1", "x", 30, 3)), "does not set that")
	long := append(testLog(), logEv(8, "q0", 5, "critical"))
	p := CheckPlaySession("q0", &PlaySession{ID: "s", Events: []PlayEvent{got(l[0]), delta(7, "ps0", "x", 1, 7)}}, long)
	requireProblem(t, p, "no such event in the log")
	requireProblem(t, playProblems(got(l[0]), delta(3, "ps0", "x", 40, 4)), "beyond it")
	// Deletes are not checked (the workload never deletes).
	del := PlayEvent{Seq: 4, Delta: true, Changes: []wire.Change{{Entity: "ps0", Op: "delete", Version: 4}}}
	if p := playProblems(got(l[0]), got(l[1]), del); len(p) != 0 {
		t.Fatalf("delete change: %v", p)
	}
}

func TestPlayCheckCounterBounds(t *testing.T) {
	pc := &PlayClient{ID: 0, Player: "q0", World: "w", Ops: []*Op{
		{Kind: OpPlayIncr, Outcome: Ok, Status: "applied"},
		{Kind: OpPlayIncr, Outcome: Ok, Status: "applied"},
		{Kind: OpPlayIncr, Outcome: Unknown},
		{Kind: OpPlayIncr, Outcome: Fail},
		{Kind: OpPlaySet, Outcome: Ok, Status: "applied"},
	}}
	for _, final := range []int64{2, 3} {
		if err := CheckPlayCounter(pc, final); err != nil {
			t.Errorf("final %d: %v", final, err)
		}
	}
	for _, final := range []int64{1, 4} {
		if err := CheckPlayCounter(pc, final); err == nil {
			t.Errorf("final %d passed, want outside [2, 3]", final)
		}
	}
}

func TestPlayActionsAreCheckedInTheFeed(t *testing.T) {
	// Play ops go through CheckEvents with the HTTP ones: an acked play
	// action missing from the log is lost, a failed one present a phantom,
	// and neither touches the HTTP counter check.
	ops := []*Op{
		{ID: 0, Kind: OpPlayIncr, World: "w", Key: "pc0", Player: "q0", Seq: 1, Outcome: Ok, Status: "applied", WorldSeq: 2},
		{ID: 1, Kind: OpPlaySet, World: "w", Key: "ps0", Player: "q0", Seq: 7, Outcome: Fail},
	}
	feed := []wire.Event{logEv(1, "q0", 7, "critical")}
	rep := CheckEvents(ops, "w", map[string][]wire.Event{"n1": feed})
	if len(rep.Lost) != 1 || len(rep.Phantoms) != 1 {
		t.Fatalf("lost %v phantoms %v, want one each", rep.Lost, rep.Phantoms)
	}
	if err := CheckCounter(ops, "w", 0); err != nil {
		t.Fatalf("play incr counted against the HTTP counter: %v", err)
	}
}

func TestPlayStatsString(t *testing.T) {
	s := (&PlayStats{Clients: 2, Acts: 5, Acked: 4, Unknown: 1, Events: 9, Deltas: 2, Sessions: 3, Resumes: 1}).String()
	if !strings.Contains(s, "acked=4") || !strings.Contains(s, "resumes=1") {
		t.Fatalf("stats %q", s)
	}
}
