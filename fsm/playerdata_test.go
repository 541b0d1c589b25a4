package fsm

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
)

// record returns one player's data record in world w (zero if none).
func (h *harness) record(w, player string) PlayerRecord {
	h.t.Helper()
	all, err := h.f.PlayerRecords(w)
	require.NoError(h.t, err)
	for _, r := range all {
		if r.Player == player {
			return r
		}
	}
	return PlayerRecord{}
}

func TestPlayerDataVersionRisesWithEveryChangeAndOnlyThen(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", Rules{})
	h.openSession("w", "s1", "ann", "t1")
	require.Zero(t, h.record("w", "ann").Version, "no data yet")

	data := func(items ...DataItem) Result {
		t.Helper()
		r := h.session(CmdSessionData, SessionCmd{World: "w", ID: "s1", Data: items})
		require.NoError(t, r.Err)
		return r
	}
	r := data(DataItem{"gold", Int(3)})
	v1 := h.record("w", "ann").Version
	require.Equal(t, uint64(h.time), v1, "the change's leader time")
	require.Equal(t, v1, r.Session.DataVersion, "the command's answer shows it")

	data(DataItem{"gold", Int(3)})
	require.Equal(t, v1, h.record("w", "ann").Version, "the same data again: no change, no new version")

	data(DataItem{"gold", Int(4)})
	v2 := h.record("w", "ann").Version
	require.Greater(t, v2, v1)

	// The leader's clock goes back (a failover): the version still rises.
	h.time -= 1_000_000_000
	data(DataItem{"gold", Int(5)})
	v3 := h.record("w", "ann").Version
	require.Equal(t, v2+1, v3)

	// Deleting every key is a change; the record stays, empty, so a mirror
	// sees the deletion at a newer version.
	data(DataItem{"gold", Value{}})
	rec := h.record("w", "ann")
	require.Greater(t, rec.Version, v3)
	require.Empty(t, rec.Data)
	info, err := h.f.Session("w", "s1")
	require.NoError(t, err)
	require.Equal(t, rec.Version, info.DataVersion)

	_, err = h.f.PlayerRecords("nope")
	require.ErrorIs(t, err, ErrUnknownWorld)
}

func TestPlayerDataImportVersionsOnlyAChange(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", Rules{})
	imp := func(items ...DataItem) Result {
		t.Helper()
		r := h.session(CmdSessionImport, SessionCmd{World: "w", Player: "bob", Data: items})
		require.NoError(t, r.Err)
		return r
	}
	r := imp(DataItem{"rank", Int(1)})
	v1 := h.record("w", "bob").Version
	require.NotZero(t, v1)
	require.Equal(t, v1, r.Session.DataVersion)
	imp(DataItem{"rank", Int(1)})
	require.Equal(t, v1, h.record("w", "bob").Version, "importing twice changes nothing")

	imp() // bob's data becomes empty
	rec := h.record("w", "bob")
	require.Greater(t, rec.Version, v1)
	require.Empty(t, rec.Data)
	all, err := h.f.PlayerData("w")
	require.NoError(t, err)
	require.NotContains(t, all, "bob", "PlayerData lists only players with data")

	imp(DataItem{"rank", Int(1)})
	require.Greater(t, h.record("w", "bob").Version, rec.Version, "refilled: never back to an old version")
}

func TestPlayerDataVersionsSurviveSnapshotAndRestore(t *testing.T) {
	h := sessionState(t)
	require.NoError(t, h.session(CmdSessionImport, SessionCmd{World: "v", Player: "cat", Data: []DataItem{{"k", Int(1)}}}).Err)
	require.NoError(t, h.session(CmdSessionImport, SessionCmd{World: "v", Player: "cat"}).Err) // emptied
	p := h.snapshotBytes()
	require.Equal(t, byte(8), p[len(snapMagic)-1])
	g := restored(t, p)
	for _, w := range []string{"w", "v"} {
		want, err := h.f.PlayerRecords(w)
		require.NoError(t, err)
		got, err := g.PlayerRecords(w)
		require.NoError(t, err)
		require.NotEmpty(t, got)
		require.Equal(t, want, got)
	}
	require.Equal(t, p, snapshotBytes(t, g), "equal states give equal bytes")

	// A truncated version table is refused, not half restored.
	bad := bytes.Clone(p[:len(p)-1])
	require.Error(t, newHarness(t).f.Restore(bytes.NewReader(bad)))
}

func TestPlayerDataVersionsAreNotInTheStateHash(t *testing.T) {
	h := sessionState(t)
	before := h.hash("w")
	h.f.mu.Lock()
	h.f.worlds["w"].dataVer["bob"] += 7
	h.f.mu.Unlock()
	require.Equal(t, before, h.hash("w"), "replicas restored from older snapshots hold version 0 for equal data")
}

func TestPlayerDataStampChangesWithEveryChangeAndSurvivesRestore(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", Rules{})
	stamp := func(f *FSM) uint64 {
		t.Helper()
		s, err := f.PlayerDataStamp("w")
		require.NoError(t, err)
		return s
	}
	seen := map[uint64]bool{stamp(h.f): true}
	imp := func(player string, gold int64) {
		t.Helper()
		require.NoError(t, h.session(CmdSessionImport, SessionCmd{World: "w", Player: player, Data: []DataItem{{"gold", Int(gold)}}}).Err)
	}
	for i, p := range []string{"ann", "bob", "ann", "ann", "bob"} {
		imp(p, int64(i))
		s := stamp(h.f)
		require.False(t, seen[s], "change %d: a stamp seen before", i)
		seen[s] = true
	}
	before := stamp(h.f)
	imp("bob", 4) // bob's data already
	require.Equal(t, before, stamp(h.f), "no change, same stamp")

	g := restored(t, h.snapshotBytes())
	require.Equal(t, before, stamp(g))
	_, err := h.f.PlayerDataStamp("nope")
	require.ErrorIs(t, err, ErrUnknownWorld)
}
