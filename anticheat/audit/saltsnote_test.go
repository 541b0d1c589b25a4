package audit

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// goldenKey is a fixed audit key: ed25519 signatures are deterministic,
// so the signed note's bytes are too.
const (
	goldenPrivate = "PRIVATE+KEY+gsd-audit-golden+2d5cf373+AciN1SUW6VHOVqgPuckUBpNj0YmSy5TjNO+OC+LVdL26"
	goldenPublic  = "gsd-audit-golden+2d5cf373+Ad1dckceHGkgFoPPQ66XpYKPmVxjt37WJv7hE7qdHqM2"
)

func saltsBody(t *testing.T, s wire.AuditSalts) []byte {
	t.Helper()
	b, err := json.Marshal(s)
	require.NoError(t, err)
	return b
}

func testSalts() wire.AuditSalts {
	return wire.AuditSalts{World: "arena", Incarnation: 7,
		Salts: []wire.AuditSalt{
			{Player: "alice", Salt: bytes.Repeat([]byte{1}, 32), Since: 1},
			{Player: "bob", Salt: bytes.Repeat([]byte{2}, 32), Since: 3},
		},
		Erased: []wire.AuditErasedSalt{{Digest: bytes.Repeat([]byte{9}, 32), Since: 2, Until: 5}},
	}
}

// The signed note's text and bytes are a frozen format: a change here
// breaks every .salts.sig already fetched.
func TestSaltsNoteSignedTextIsFrozen(t *testing.T) {
	s, err := ParseSigningKey(goldenPrivate)
	require.NoError(t, err)
	sn := SaltsNote{World: "arena", Incarnation: 7, Size: 42, SHA256: [32]byte{1, 2, 3}}
	msg, err := SignSalts(sn, s)
	require.NoError(t, err)
	want, err := os.ReadFile(filepath.Join("testdata", "salts_v1.note"))
	require.NoError(t, err)
	require.Equal(t, string(want), string(msg))
	require.True(t, strings.HasPrefix(string(msg), "gsd audit salts v1\nworld arena\nincarnation 7\nsize 42\nsha256 AQIDAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n"), string(msg))

	v, err := ParseVerifyingKey(goldenPublic)
	require.NoError(t, err)
	got, signers, err := OpenSalts(want, v)
	require.NoError(t, err)
	require.Equal(t, sn, got)
	require.Equal(t, []string{"gsd-audit-golden+2d5cf373"}, signers)
}

func TestSignedSaltsOpenAndVouchForTheirBytesOnly(t *testing.T) {
	s, v := testKeys(t, "gsd-audit")
	body := saltsBody(t, testSalts())
	msg, err := SignSalts(NewSaltsNote("arena", 7, 42, body), s)
	require.NoError(t, err)
	sn, signers, err := OpenSalts(msg, v)
	require.NoError(t, err)
	require.Equal(t, []string{v.ID()}, signers)
	require.Equal(t, int64(42), sn.Size)
	require.NoError(t, sn.Vouches(body, "arena", 7))

	// A forger's edits: a live salt removed and its digest added to
	// erased (the renaming forgery), a digest added, one byte changed.
	forged := testSalts()
	forged.Erased = append(forged.Erased, wire.AuditErasedSalt{Digest: func() []byte {
		d := wire.SaltedID(forged.Salts[1].Salt, "bob")
		return d[:]
	}(), Since: 3, Until: 42})
	forged.Salts = forged.Salts[:1]
	added := testSalts()
	added.Erased = append(added.Erased, wire.AuditErasedSalt{Digest: bytes.Repeat([]byte{8}, 32), Since: 1, Until: 2})
	changed := bytes.Clone(body)
	changed[bytes.IndexByte(changed, 'a')] = 'A'
	for name, b := range map[string][]byte{
		"live salt erased": saltsBody(t, forged),
		"digest added":     saltsBody(t, added),
		"one byte changed": changed,
		"indented":         func() []byte { b, _ := json.MarshalIndent(testSalts(), "", "  "); return b }(),
	} {
		require.ErrorIs(t, sn.Vouches(b, "arena", 7), ErrSaltsNote, name)
	}

	// Another world's (or incarnation's) signed salts are refused, even
	// with the bytes they sign.
	other := testSalts()
	other.World = "lobby"
	ob := saltsBody(t, other)
	omsg, err := SignSalts(NewSaltsNote("lobby", 7, 42, ob), s)
	require.NoError(t, err)
	osn, _, err := OpenSalts(omsg, v)
	require.NoError(t, err)
	require.ErrorIs(t, osn.Vouches(ob, "arena", 7), ErrSaltsNote)
	require.ErrorIs(t, sn.Vouches(body, "arena", 8), ErrSaltsNote)

	// Another key's signature, a changed text, a checkpoint: refused.
	_, v2 := testKeys(t, "other")
	_, _, err = OpenSalts(msg, v2)
	require.ErrorIs(t, err, ErrSaltsNote)
	_, _, err = OpenSalts(bytes.Replace(msg, []byte("size 42"), []byte("size 43"), 1), v)
	require.ErrorIs(t, err, ErrSaltsNote)
	l, _ := newLog(t, "arena", 3)
	cp, err := l.Checkpoint()
	require.NoError(t, err)
	cmsg, err := SignCheckpoint(cp, s)
	require.NoError(t, err)
	_, _, err = OpenSalts(cmsg, v)
	require.ErrorIs(t, err, ErrSaltsNote)
}

func TestSaltsNoteRefusesTextsNotInItsForm(t *testing.T) {
	sn := SaltsNote{World: "arena", Incarnation: 7, Size: 42, SHA256: [32]byte{1}}
	text := sn.Text()
	got, err := ParseSaltsNote(text)
	require.NoError(t, err)
	require.Equal(t, sn, got)
	for name, bad := range map[string]string{
		"empty":           "",
		"other version":   strings.Replace(text, "v1", "v2", 1),
		"extra line":      text + "extra\n",
		"no final":        strings.TrimSuffix(text, "\n"),
		"lines swapped":   strings.Replace(strings.Replace(text, "incarnation 7\n", "", 1), "size 42\n", "size 42\nincarnation 7\n", 1),
		"no world":        strings.Replace(text, "world arena", "world ", 1),
		"inc not a num":   strings.Replace(text, "incarnation 7", "incarnation x", 1),
		"negative size":   strings.Replace(text, "size 42", "size -1", 1),
		"size with plus":  strings.Replace(text, "size 42", "size +42", 1),
		"sha256 not b64":  strings.Replace(text, "sha256 ", "sha256 !", 1),
		"sha256 32 bytes": "gsd audit salts v1\nworld arena\nincarnation 7\nsize 42\nsha256 AQID\n",
	} {
		_, err := ParseSaltsNote(bad)
		require.ErrorIs(t, err, ErrSaltsNote, name)
	}
	s, _ := testKeys(t, "gsd-audit")
	for _, bad := range []SaltsNote{{World: ""}, {World: "a\nb"}, {World: "arena", Size: -1}} {
		_, err := SignSalts(bad, s)
		require.ErrorIs(t, err, ErrSaltsNote)
	}
	_, err = SignSalts(sn, failingSigner{s})
	require.Error(t, err)
}
