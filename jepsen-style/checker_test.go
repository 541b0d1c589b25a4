package jepsen

import (
	"strings"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/wire"
)

// Hand-made histories: the checkers must reject each classic anomaly and
// accept the legal ones, so a clean fault run means something.

func w(id, client int, val int64, inv, ret int64, ver uint64) *Op {
	return &Op{ID: id, Client: client, World: "w", Key: "r", Kind: OpWrite, Value: val, Invoke: inv, Complete: ret,
		Outcome: Ok, Status: "applied", RVersion: ver, WorldSeq: ver, Player: "p", Seq: uint64(id + 1)}
}

func rd(id, client int, exists bool, val int64, ver uint64, inv, ret int64) *Op {
	return &Op{ID: id, Client: client, World: "w", Key: "r", Kind: OpRead, Invoke: inv, Complete: ret,
		Outcome: Ok, Exists: exists, RValue: val, RVersion: ver}
}

func linOK(t *testing.T, ops ...*Op) bool {
	t.Helper()
	ok, _ := CheckLinearizable(ops, 10*time.Second, t.TempDir())
	return ok
}

func TestCheckerAcceptsSequentialHistory(t *testing.T) {
	if !linOK(t, rd(0, 0, false, 0, 0, 0, 1), w(1, 0, 10, 2, 3, 5), rd(2, 1, true, 10, 5, 4, 5)) {
		t.Fatal("a sequential history was judged not linearizable")
	}
}

func TestCheckerRejectsStaleRead(t *testing.T) {
	// The write of 20 is acknowledged before the read starts, yet the read
	// returns the older 10.
	if linOK(t, w(0, 0, 10, 0, 1, 3), w(1, 0, 20, 2, 3, 7), rd(2, 1, true, 10, 3, 4, 5)) {
		t.Fatal("a stale read passed")
	}
}

func TestCheckerRejectsLostWrite(t *testing.T) {
	// An acknowledged write never shows: a later read sees the field absent.
	if linOK(t, w(0, 0, 10, 0, 1, 3), rd(1, 1, false, 0, 0, 2, 3)) {
		t.Fatal("a lost write passed the register check")
	}
	ops := []*Op{w(0, 0, 10, 0, 1, 3)}
	rep := CheckEvents(ops, "w", map[string][]wire.Event{"n1": {}})
	if len(rep.Lost) != 1 {
		t.Fatalf("lost = %v, want the acked write", rep.Lost)
	}
}

func TestCheckerRejectsVersionThatDisagreesWithValue(t *testing.T) {
	if linOK(t, w(0, 0, 10, 0, 1, 3), rd(1, 1, true, 10, 4, 2, 3)) {
		t.Fatal("a read with the right value but another version passed")
	}
}

func TestCheckerTreatsUnknownWriteAsMaybeApplied(t *testing.T) {
	unk := w(1, 0, 20, 2, 3, 0)
	unk.Outcome, unk.Status = Unknown, ""
	// Seen by one read, later not overwritten: fine.
	if !linOK(t, w(0, 0, 10, 0, 1, 3), unk, rd(2, 1, true, 20, 9, 10, 11), rd(3, 1, true, 20, 9, 12, 13)) {
		t.Fatal("an unknown write that took effect was rejected")
	}
	// Never seen: also fine.
	unk2 := *unk
	if !linOK(t, w(0, 0, 10, 0, 1, 3), &unk2, rd(2, 1, true, 10, 3, 10, 11)) {
		t.Fatal("an unknown write that did not take effect was rejected")
	}
	// Seen, then un-seen: not fine.
	unk3 := *unk
	if linOK(t, w(0, 0, 10, 0, 1, 3), &unk3, rd(2, 1, true, 20, 9, 10, 11), rd(3, 1, true, 10, 3, 12, 13)) {
		t.Fatal("a value that came back after being overwritten passed")
	}
}

func TestCheckerCASFollowsVersions(t *testing.T) {
	cas := func(id int, expect uint64, val int64, inv, ret int64, applied bool, ver uint64, cur int64) *Op {
		o := &Op{ID: id, World: "w", Key: "r", Kind: OpCAS, Value: val, Expect: expect, Invoke: inv, Complete: ret, Outcome: Ok, RVersion: ver}
		if applied {
			o.Status = "applied"
		} else {
			o.Status, o.Exists, o.RValue = "conflict", true, cur
		}
		return o
	}
	// CAS on the right version applies; on a stale one it conflicts and
	// reports the current value.
	if !linOK(t, w(0, 0, 10, 0, 1, 3), cas(1, 3, 11, 2, 3, true, 5, 0), cas(2, 3, 12, 4, 5, false, 5, 11)) {
		t.Fatal("legal CAS history rejected")
	}
	// Two CAS on the same expected version both applied: a lost update.
	if linOK(t, w(0, 0, 10, 0, 1, 3), cas(1, 3, 11, 2, 3, true, 5, 0), cas(2, 3, 12, 4, 5, true, 6, 0)) {
		t.Fatal("two CAS from one version both applied, yet passed")
	}
}

func TestCheckerFindsDuplicateAndPhantomActions(t *testing.T) {
	ok := w(0, 0, 10, 0, 1, 1)
	failed := w(1, 0, 20, 2, 3, 0)
	failed.Outcome = Fail
	feed := []wire.Event{
		{Seq: 1, Player: "p", ClientSeq: 1, Status: "applied"},
		{Seq: 2, Player: "p", ClientSeq: 1, Status: "applied"},
		{Seq: 3, Player: "p", ClientSeq: 2, Status: "applied"},
	}
	rep := CheckEvents([]*Op{ok, failed}, "w", map[string][]wire.Event{"n1": feed})
	if len(rep.Duplicates) != 1 || len(rep.Phantoms) != 1 {
		t.Fatalf("duplicates %v phantoms %v, want one each", rep.Duplicates, rep.Phantoms)
	}
	// Two nodes that disagree at a seq.
	other := []wire.Event{{Seq: 1, Player: "q", ClientSeq: 9, Status: "applied"}}
	rep = CheckEvents(nil, "w", map[string][]wire.Event{"n1": feed[:1], "n2": other})
	if len(rep.Mismatch) == 0 {
		t.Fatal("diverging feeds not reported")
	}
}

func TestCheckerCounterAndSetBounds(t *testing.T) {
	inc := func(outcome string) *Op { return &Op{World: "w", Kind: OpIncr, Outcome: outcome} }
	ops := []*Op{inc(Ok), inc(Ok), inc(Unknown), inc(Fail)}
	for final, want := range map[int64]bool{1: false, 2: true, 3: true, 4: false} {
		if err := CheckCounter(ops, "w", final); (err == nil) != want {
			t.Errorf("counter final %d: err %v, want ok=%v", final, err, want)
		}
	}
	add := func(v int64, outcome string) *Op { return &Op{World: "w", Kind: OpAdd, Value: v, Outcome: outcome} }
	sops := []*Op{add(1, Ok), add(2, Unknown), add(3, Fail)}
	if err := CheckSet(sops, "w", []int64{1}); err != nil {
		t.Errorf("legal set rejected: %v", err)
	}
	if err := CheckSet(sops, "w", []int64{2}); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing acked add not reported: %v", err)
	}
	if err := CheckSet(sops, "w", []int64{1, 3}); err == nil {
		t.Error("a failed add present was not reported")
	}
}
