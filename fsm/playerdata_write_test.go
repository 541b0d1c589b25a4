package fsm

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// manyKeys returns n distinct data key names.
func manyKeys(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("k%03d", i)
	}
	return out
}

// writableRules lets players write loadout and settings of their own data.
func writableRules() Rules {
	return Rules{Schema: Schema{PlayerData: PlayerDataRule{PlayerWritable: []string{"loadout", "settings"}}}}
}

func TestPlayerDataRulesKeyIsBuiltAndNeedsLogVersion11(t *testing.T) {
	var r Rules
	require.NoError(t, json.Unmarshal([]byte(`{"player_data":{"player_writable":["loadout","settings"]}}`), &r))
	require.Equal(t, []string{"loadout", "settings"}, r.Schema.PlayerData.PlayerWritable)
	b, err := json.Marshal(r)
	require.NoError(t, err)
	require.JSONEq(t, `{"strict":false,"player_data":{"player_writable":["loadout","settings"]}}`, string(b))
	need := Needs(&Command{Kind: CmdCreateWorld, World: &WorldSpec{Rules: r}})
	require.Equal(t, Versions{Log: 11, Snapshot: 4, Wire: 1}, need)
	require.Equal(t, need, Needs(&Command{Kind: CmdUpdateRules, Rules: &RulesUpdate{Rules: r}}))
	require.False(t, Versions{Log: 10, Snapshot: SnapshotVersion, Wire: 1}.Covers(need), "a log 10 cluster refuses player_data")
	require.True(t, Supported().Covers(need))

	// Encoded, decoded, the same rules.
	e := &encoder{}
	e.rules(r)
	d := &decoder{b: e.b}
	require.Equal(t, r, d.rules())
	require.NoError(t, d.err)

	// A data write in either form needs log 11 too.
	for _, c := range []SessionCmd{{World: "w", ID: "s"}, {World: "w", Player: "ann"}} {
		need := Needs(&Command{Kind: CmdSessionData, Session: &c})
		require.Equal(t, Versions{Log: 11, Snapshot: 3, Wire: 1}, need)
		require.False(t, Versions{Log: 10, Snapshot: SnapshotVersion, Wire: 1}.Covers(need))
	}
}

func TestServerDataWriteMergesKeysWithoutASession(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", Rules{})
	write := func(c SessionCmd) Result {
		t.Helper()
		c.World = "w"
		return h.session(CmdSessionData, c)
	}
	r := write(SessionCmd{Player: "ann", Data: []DataItem{{"gold", Int(5)}, {"rank", String("gold")}}})
	require.NoError(t, r.Err)
	require.Equal(t, map[string]Value{"gold": Int(5), "rank": String("gold")}, r.Session.Data)
	require.Equal(t, "ann", r.Session.Player)
	require.Empty(t, r.Session.ID, "no session was needed")
	v1 := r.Session.DataVersion
	require.Equal(t, uint64(h.time), v1)
	require.Equal(t, v1, h.record("w", "ann").Version)

	// A merge: set one key, delete another, keep the rest.
	h.time++
	r = write(SessionCmd{Player: "ann", Seq: v1, Data: []DataItem{{"xp", Int(1)}, {"rank", Value{}}}})
	require.NoError(t, r.Err)
	require.Equal(t, map[string]Value{"gold": Int(5), "xp": Int(1)}, r.Session.Data)
	v2 := r.Session.DataVersion
	require.Greater(t, v2, v1)

	// A stale expected version changes nothing.
	r = write(SessionCmd{Player: "ann", Seq: v1, Data: []DataItem{{"gold", Int(0)}}})
	require.ErrorIs(t, r.Err, ErrDataConflict)
	require.Equal(t, CodeDataConflict, Code(r.Err))
	require.Equal(t, PlayerRecord{Player: "ann", Version: v2, Data: map[string]Value{"gold": Int(5), "xp": Int(1)}}, h.record("w", "ann"))

	// A player without data has version 0: an expected version is a
	// conflict, none is a first write.
	require.ErrorIs(t, write(SessionCmd{Player: "bob", Seq: 7, Data: []DataItem{{"gold", Int(1)}}}).Err, ErrDataConflict)

	// Over the limit: nothing applies.
	r = write(SessionCmd{Player: "ann", Data: func() []DataItem {
		var items []DataItem
		for _, k := range manyKeys(MaxSessionData - 1) {
			items = append(items, DataItem{k, Int(1)})
		}
		return items
	}()})
	require.ErrorIs(t, r.Err, ErrMalformed)
	require.Equal(t, v2, h.record("w", "ann").Version)

	// Deleting every key leaves no data, and a later version.
	h.time++
	r = write(SessionCmd{Player: "ann", Data: []DataItem{{"gold", Value{}}, {"xp", Value{}}}})
	require.NoError(t, r.Err)
	require.Empty(t, r.Session.Data)
	require.Greater(t, r.Session.DataVersion, v2)
	all, err := h.f.PlayerData("w")
	require.NoError(t, err)
	require.NotContains(t, all, "ann")

	// Bad names are refused before the state is read.
	require.ErrorIs(t, write(SessionCmd{Player: "", Data: []DataItem{{"k", Int(1)}}}).Err, ErrMalformed)
	require.ErrorIs(t, write(SessionCmd{Player: "ann", Data: []DataItem{{"", Int(1)}}}).Err, ErrMalformed)
	require.ErrorIs(t, h.session(CmdSessionData, SessionCmd{World: "nope", Player: "ann"}).Err, ErrUnknownWorld)
}

func TestPlayerDataWriteThroughTheSessionTakesOnlyPlayerWritableKeys(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", writableRules())
	h.openSession("w", "s1", "ann", "t1")
	h.openSession("w", "s2", "bob", "t2")
	own := func(id, player string, seq uint64, items ...DataItem) Result {
		t.Helper()
		return h.session(CmdSessionData, SessionCmd{World: "w", ID: id, Player: player, Seq: seq, Data: items})
	}
	r := own("s1", "ann", 0, DataItem{"loadout", String("sniper")})
	require.NoError(t, r.Err)
	require.Equal(t, map[string]Value{"loadout": String("sniper")}, r.Session.Data)
	require.Equal(t, "s1", r.Session.ID)
	v1 := r.Session.DataVersion

	// One key the rules do not list: nothing applies, not even the
	// writable one.
	r = own("s1", "ann", 0, DataItem{"settings", String("dark")}, DataItem{"gold", Int(1_000_000)})
	require.ErrorIs(t, r.Err, ErrForbidden)
	require.ErrorContains(t, r.Err, `"gold"`)
	require.Equal(t, PlayerRecord{Player: "ann", Version: v1, Data: map[string]Value{"loadout": String("sniper")}}, h.record("w", "ann"))

	// Another player's data through one's own session: refused.
	r = own("s1", "bob", 0, DataItem{"loadout", String("knife")})
	require.ErrorIs(t, r.Err, ErrForbidden)
	require.Zero(t, h.record("w", "bob").Version)

	// The expected version guards it too.
	require.ErrorIs(t, own("s1", "ann", v1+1, DataItem{"settings", String("dark")}).Err, ErrDataConflict)
	h.time++
	r = own("s1", "ann", v1, DataItem{"settings", String("dark")}, DataItem{"loadout", Value{}})
	require.NoError(t, r.Err)
	require.Equal(t, map[string]Value{"settings": String("dark")}, r.Session.Data)

	// A kicked session writes nothing.
	require.NoError(t, h.session(CmdSessionKick, SessionCmd{World: "w", ID: "s2", Reason: "afk"}).Err)
	require.ErrorIs(t, own("s2", "bob", 0, DataItem{"loadout", String("knife")}).Err, ErrSessionKicked)
	require.ErrorIs(t, own("s9", "ann", 0, DataItem{"loadout", String("knife")}).Err, ErrSessionUnknown)

	// Without player_data in the rules a player writes no key at all.
	h.createWorld("closed", Rules{})
	h.openSession("closed", "c1", "ann", "t3")
	require.ErrorIs(t, h.session(CmdSessionData, SessionCmd{World: "closed", ID: "c1", Player: "ann", Data: []DataItem{{"loadout", String("x")}}}).Err, ErrForbidden)
}

func TestPlayerDataWritesSurviveSnapshotAndRestore(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", writableRules())
	h.openSession("w", "s1", "ann", "t1")
	require.NoError(t, h.session(CmdSessionData, SessionCmd{World: "w", Player: "ann", Data: []DataItem{{"gold", Int(9)}}}).Err)
	require.NoError(t, h.session(CmdSessionData, SessionCmd{World: "w", ID: "s1", Player: "ann", Data: []DataItem{{"loadout", String("sniper")}}}).Err)
	want := h.record("w", "ann")
	hw, err := h.f.World("w")
	require.NoError(t, err)
	require.Equal(t, map[string]Value{"gold": Int(9), "loadout": String("sniper")}, want.Data)

	g := restored(t, h.snapshotBytes())
	recs, err := g.PlayerRecords("w")
	require.NoError(t, err)
	require.Equal(t, []PlayerRecord{want}, recs)
	wi, err := g.World("w")
	require.NoError(t, err)
	require.Equal(t, []string{"loadout", "settings"}, wi.Rules.Schema.PlayerData.PlayerWritable, "the rules key too")
	require.Equal(t, hw.Hash, wi.Hash)
}
