package audit

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

func testKeys(t testing.TB, name string) (SigningKey, VerifyingKey) {
	t.Helper()
	private, public, err := GenerateKey(name)
	require.NoError(t, err)
	s, err := ParseSigningKey(private)
	require.NoError(t, err)
	v, err := ParseVerifyingKey(public)
	require.NoError(t, err)
	return s, v
}

func TestCheckpointTextIsTheTransparencyLogForm(t *testing.T) {
	c := Checkpoint{Origin: "arena", Size: 42, Root: tlog.Hash{1, 2, 3}}
	require.Equal(t, "arena\n42\nAQIDAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n", c.Text())
	got, err := ParseCheckpoint(c.Text())
	require.NoError(t, err)
	require.Equal(t, c, got)
	got, err = ParseCheckpoint(c.Text() + "extension line\n")
	require.NoError(t, err, "extensions are ignored")
	require.Equal(t, c, got)

	for name, text := range map[string]string{
		"empty":          "",
		"two lines":      "arena\n42\n",
		"no final line":  "arena\n42\nAQID",
		"no origin":      "\n42\n" + c.Text()[9:],
		"negative size":  "arena\n-1\n" + c.Text()[9:],
		"size with plus": "arena\n+42\n" + c.Text()[9:],
		"size not a num": "arena\nx\n" + c.Text()[9:],
		"short root":     "arena\n42\nAQID\n",
		"root not b64":   "arena\n42\n!!\n",
	} {
		_, err := ParseCheckpoint(text)
		require.ErrorIs(t, err, ErrCheckpoint, name)
	}
}

func TestSignedCheckpointsOpenUnderTheirKeysOnly(t *testing.T) {
	l, _ := newLog(t, "arena", 9)
	c, err := l.Checkpoint()
	require.NoError(t, err)
	s, v := testKeys(t, "gsd-audit")
	msg, err := SignCheckpoint(c, s)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(msg), c.Text()+"\n— gsd-audit "), string(msg))

	got, signers, err := OpenCheckpoint(msg, v)
	require.NoError(t, err)
	require.Equal(t, c, got)
	require.Equal(t, []string{v.ID()}, signers)
	require.Equal(t, s.ID(), v.ID())

	_, other := testKeys(t, "gsd-audit")
	_, _, err = OpenCheckpoint(msg, other)
	require.ErrorIs(t, err, ErrCheckpoint, "another key of the same name")
	forged := []byte(strings.Replace(string(msg), "\n9\n", "\n10\n", 1))
	_, _, err = OpenCheckpoint(forged, v)
	require.ErrorIs(t, err, ErrCheckpoint, "a changed size")

	// A signed note that is not a checkpoint.
	bad, err := note.Sign(&note.Note{Text: "arena\n"}, s)
	require.NoError(t, err)
	_, _, err = OpenCheckpoint(bad, v)
	require.ErrorIs(t, err, ErrCheckpoint)
}

func TestCheckpointsSignedByTheOldAndNewKeyOpenWithEither(t *testing.T) {
	c := Checkpoint{Origin: "arena", Size: 1, Root: tlog.Hash{9}}
	oldS, oldV := testKeys(t, "audit-2026")
	newS, newV := testKeys(t, "audit-2027")
	msg, err := SignCheckpoint(c, oldS, newS)
	require.NoError(t, err)
	for _, v := range []VerifyingKey{oldV, newV} {
		got, signers, err := OpenCheckpoint(msg, v)
		require.NoError(t, err)
		require.Equal(t, c, got)
		require.Equal(t, []string{v.ID()}, signers)
	}
	_, signers, err := OpenCheckpoint(msg, oldV, newV)
	require.NoError(t, err)
	require.ElementsMatch(t, []string{oldV.ID(), newV.ID()}, signers)
}

type failingSigner struct{ note.Signer }

func (failingSigner) Sign([]byte) ([]byte, error) { return nil, errors.New("hsm unplugged") }

func TestSignCheckpointRefusesWhatCannotBeSigned(t *testing.T) {
	s, _ := testKeys(t, "k")
	for _, origin := range []string{"", "a\nb"} {
		_, err := SignCheckpoint(Checkpoint{Origin: origin}, s)
		require.ErrorIs(t, err, ErrCheckpoint)
	}
	_, err := SignCheckpoint(Checkpoint{Origin: "arena"}, failingSigner{s})
	require.ErrorContains(t, err, "hsm unplugged")
}

func TestCheckpointTextNamesItsIncarnationAndTombstone(t *testing.T) {
	c := Checkpoint{Origin: "arena", Size: 42, Root: tlog.Hash{1, 2, 3}, Incarnation: 17}
	require.Equal(t, "arena\n42\nAQIDAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\nincarnation 17\n", c.Text())
	got, err := ParseCheckpoint(c.Text())
	require.NoError(t, err)
	require.Equal(t, c, got)

	c.Tombstone, c.LastIndex, c.LastTime = true, 90, 1700000000
	require.True(t, strings.HasSuffix(c.Text(), "\nincarnation 17\ntombstone 90 1700000000\n"), c.Text())
	got, err = ParseCheckpoint(c.Text() + "other extension\n")
	require.NoError(t, err)
	require.Equal(t, c, got)

	base := "arena\n42\nAQIDAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"
	for _, ext := range []string{"incarnation 0", "incarnation x", "incarnation 017", "tombstone", "tombstone 1", "tombstone 1 2 3", "tombstone +1 2"} {
		_, err := ParseCheckpoint(base + ext + "\n")
		require.ErrorIs(t, err, ErrCheckpoint, ext)
	}
}
