package wire

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"testing"

	"github.com/gsd-dev/gsd/internal/golden"
	"github.com/stretchr/testify/require"
)

func testSalts() *AuditSalts {
	salt := func(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }
	return &AuditSalts{World: "arena", Incarnation: 4, Salts: []AuditSalt{
		{Player: "p1", Salt: salt(1), Since: 1},
		{Player: "p2", Salt: salt(2), Since: 301}, // after leafEvent's seq: not salted there
		{Player: "box", Salt: salt(3), Since: 300},
		{Player: "x", Salt: salt(4), Since: 10},
	}, Erased: []AuditErasedSalt{{Digest: salt(9), Since: 2, Until: 2}, {Digest: salt(8), Since: 3, Until: 40}}}
}

// TestSaltedIDIsHMACSHA256: RFC 4231 test case 2.
func TestSaltedIDIsHMACSHA256(t *testing.T) {
	d := SaltedID([]byte("Jefe"), "what do ya want for nothing?")
	require.Equal(t, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843", hex.EncodeToString(d[:]))
}

func TestAuditLeafV2BytesAreFrozen(t *testing.T) {
	// Spelled out by hand from the layout in AppendAuditLeafV2's doc
	// comment: the player salted, an entity in clear, a value salted.
	d := SaltedID(bytes.Repeat([]byte{7}, 32), "me")
	salted := func(name string) ([32]byte, bool) { return d, name == "me" }
	e := Event{World: "w", Seq: 5, Index: 77, Time: -2, Player: "me", Priority: "bulk", Status: "applied", Duplicate: true,
		Versions: map[string]map[string]uint64{"e": {"f": 1}},
		Changes:  []Change{{Entity: "e", Field: "f", Op: "set", Value: ptr(String("me")), Version: 1}}}
	want := []byte{0x02, 0x01, 'w', 0x05, 0x03, 0x01}
	want = append(want, d[:]...)
	want = append(want, 0x00, // client seq
		0x04, 'b', 'u', 'l', 'k', 0x07, 'a', 'p', 'p', 'l', 'i', 'e', 'd', 0x00,
		0x01, 0x00, 0x01, 'e', 0x01, 0x01, 'f', 0x01, // versions: e (clear): f: 1
		0x01, 0x00, 0x01, 'e', 0x01, 'f', 0x03, 's', 'e', 't', 0x05) // one change: e f set, value salted
	want = append(want, d[:]...)
	want = append(want, 0x00, 0x01, 0x00) // no set, version 1, exists absent
	require.Equal(t, want, AppendAuditLeafV2(nil, &e, salted))

	full := leafEvent()
	digests := testSalts().Digests()
	golden.Binary(t, "audit_leaf_v2.bin", AppendAuditLeafV2(nil, &full, SaltedAt(digests, full.Seq)))
}

// TestAuditLeafV2SaltsOnlyWhatTheTableSaysAtTheSeq: without salts every
// id is in clear (the leaf differs from v1 by its version byte and id
// tags only); a salt whose since is after the event's seq leaves the id
// as it was committed; every salted place changes the leaf.
func TestAuditLeafV2SaltsOnlyWhatTheTableSaysAtTheSeq(t *testing.T) {
	e := leafEvent()
	clear := AppendAuditLeafV2(nil, &e, nil)
	require.Equal(t, AuditLeafV2, clear[0])
	require.NotEqual(t, AppendAuditLeaf(nil, &e)[1:], clear[1:])
	require.Equal(t, clear, AppendAuditLeafV2(nil, &e, SaltedAt(map[string]SaltDigest{}, e.Seq)))

	s := testSalts()
	require.NoError(t, s.Check())
	digests := s.Digests()
	salted := AppendAuditLeafV2(nil, &e, SaltedAt(digests, e.Seq))
	// The player, an entity, a set element: salted, no longer in clear.
	for p, inClear := range map[string]string{"p1": "\x00\x02p1", "box": "\x00\x03box", "x": "\x04\x01x"} {
		d := digests[p].Digest
		require.True(t, bytes.Contains(salted, d[:]), p)
		require.True(t, bytes.Contains(clear, []byte(inClear)), p)
		require.False(t, bytes.Contains(salted, []byte(inClear)), p)
	}
	d2 := digests["p2"].Digest
	require.False(t, bytes.Contains(salted, d2[:]))
	require.Equal(t, salted, AppendAuditLeafV2(nil, &e, SaltedAt(digests, e.Seq)), "deterministic, maps in any order")

	// Without one player's salt (erased) the leaf differs: its events
	// verify by their leaf hashes only.
	delete(digests, "p1")
	require.NotEqual(t, salted, AppendAuditLeafV2(nil, &e, SaltedAt(digests, e.Seq)))

	// Read back from JSON the leaf is the same.
	b, err := json.Marshal(e)
	require.NoError(t, err)
	var back Event
	require.NoError(t, json.Unmarshal(b, &back))
	all := s.Digests()
	require.Equal(t, salted, AppendAuditLeafV2(nil, &back, SaltedAt(all, back.Seq)))
	require.Equal(t, append([]byte("pre"), salted...), AppendAuditLeafV2([]byte("pre"), &e, SaltedAt(all, e.Seq)))
}

func TestAuditSaltsCheckRefusesWhatAVerifierCannotUse(t *testing.T) {
	for name, edit := range map[string]func(*AuditSalts){
		"no player":      func(s *AuditSalts) { s.Salts[0].Player = "" },
		"twice":          func(s *AuditSalts) { s.Salts[1].Player = "p1" },
		"short salt":     func(s *AuditSalts) { s.Salts[2].Salt = s.Salts[2].Salt[:31] },
		"since 0":        func(s *AuditSalts) { s.Salts[3].Since = 0 },
		"since huge":     func(s *AuditSalts) { s.Salts[3].Since = 1 << 63 },
		"short digest":   func(s *AuditSalts) { s.Erased[0].Digest = s.Erased[0].Digest[:31] },
		"erased since 0": func(s *AuditSalts) { s.Erased[0].Since = 0 },
		"until < since":  func(s *AuditSalts) { s.Erased[1].Until = 2 },
		"until huge":     func(s *AuditSalts) { s.Erased[1].Until = 1 << 63 },
	} {
		s := testSalts()
		edit(s)
		require.ErrorIs(t, s.Check(), ErrMalformed, name)
	}
	b, err := json.Marshal(testSalts())
	require.NoError(t, err)
	var back AuditSalts
	require.NoError(t, json.Unmarshal(b, &back))
	require.Equal(t, *testSalts(), back)
}

// TestAuditSaltsCheckRefusesAnErasedDigestThatIsALiveSaltsID: the
// forgery the review found (a live player's salted id added to the
// erased digests, so that their events renamed pass as an erased
// player's) is refused whether the ranges overlap or not, and so is a
// digest twice; a genuine table, whose digests are other salts', passes.
func TestAuditSaltsCheckRefusesAnErasedDigestThatIsALiveSaltsID(t *testing.T) {
	salt := func(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }
	live := SaltedID(salt(1), "p1") // p1 salted from seq 1
	s := testSalts()
	s.Erased[1].Digest = live[:] // seqs 3 to 40
	err := s.Check()
	require.ErrorIs(t, err, ErrMalformed)
	require.ErrorContains(t, err, `the erased digest of seqs 3 to 40 is live player "p1"'s salted id`)

	x := SaltedID(salt(4), "x") // x salted from seq 10, the digest's range is 2 to 2
	s = testSalts()
	s.Erased[0].Digest = x[:]
	require.ErrorContains(t, s.Check(), `the erased digest of seqs 2 to 2 is live player "x"'s salted id`)

	s = testSalts()
	s.Erased[1].Digest = s.Erased[0].Digest
	require.ErrorContains(t, s.Check(), "the erased digests of seqs 2 to 2 and 3 to 40 are the same")

	s = testSalts()
	other := SaltedID(salt(5), "p1") // p1's earlier, erased salt
	s.Erased[1].Digest = other[:]
	require.NoError(t, s.Check())
}

// TestOnlyExactIDsAreSaltedFieldNamesAndCompoundIDsStayInClear: the
// limit docs/ANTICHEAT.md states (and the review found): a field named
// after a salted player (scores.alice) and a compound id (player:alice)
// stay in clear in the version 2 leaf, while the player and an entity
// named exactly by the id are salted.
func TestOnlyExactIDsAreSaltedFieldNamesAndCompoundIDsStayInClear(t *testing.T) {
	v := Int(5)
	e := Event{World: "w", Seq: 1, Player: "alice", Status: "applied",
		Versions: map[string]map[string]uint64{"scores": {"alice": 1}, "player:alice": {"hp": 1}},
		Changes: []Change{{Entity: "scores", Field: "alice", Op: "set", Value: &v, Version: 1},
			{Entity: "player:alice", Field: "hp", Op: "set", Value: &v, Version: 1}}}
	s := AuditSalts{World: "w", Salts: []AuditSalt{{Player: "alice", Salt: bytes.Repeat([]byte{7}, 32), Since: 1}}}
	require.NoError(t, s.Check())
	leaf := AppendAuditLeafV2(nil, &e, SaltedAt(s.Digests(), 1))
	require.Equal(t, 2, bytes.Count(leaf, []byte("player:alice")), "the compound id, in versions and the change")
	require.Equal(t, 4, bytes.Count(leaf, []byte("alice")), "the field name twice, the compound id twice; not the player")

	exact := Event{World: "w", Seq: 1, Player: "alice", Status: "applied",
		Versions: map[string]map[string]uint64{"alice": {"hp": 1}},
		Changes:  []Change{{Entity: "alice", Field: "hp", Op: "set", Value: &v, Version: 1}}}
	require.NotContains(t, string(AppendAuditLeafV2(nil, &exact, SaltedAt(s.Digests(), 1))), "alice")
}
