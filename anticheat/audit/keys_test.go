package audit

import (
	"crypto/rand"
	"fmt"
	"golang.org/x/mod/sumdb/note"
	"strings"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

func TestKeyFilesAreNoteKeys(t *testing.T) {
	private, public, err := GenerateKey("gsd-audit")
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(private, "PRIVATE+KEY+gsd-audit+"), private)
	require.True(t, strings.HasPrefix(public, "gsd-audit+"), public)
	s, err := ParseSigningKey(private + "\n")
	require.NoError(t, err, "a trailing newline, as in a file")
	v, err := ParseVerifyingKey(" " + public + "\n")
	require.NoError(t, err)
	require.Equal(t, fmt.Sprintf("gsd-audit+%08x", v.KeyHash()), v.ID())
	require.Equal(t, v.ID(), s.ID())
	require.True(t, strings.HasPrefix(public, v.ID()+"+"), "the id is the public key's first two parts")
}

func TestAuditKeysSignEnvelopesUnderTheirIDs(t *testing.T) {
	s, v := testKeys(t, "gsd-audit")
	now := time.UnixMilli(1_800_000_000_000)
	sender := wire.NewKeyring(time.Minute, 0)
	require.NoError(t, sender.SetSigner(s.Envelope))
	receiver := wire.NewKeyring(time.Minute, 0)
	require.NoError(t, receiver.Add(v.Envelope))
	env, err := sender.Seal("checkpoint", []byte("x"), now, time.Second)
	require.NoError(t, err)
	body, err := receiver.Open(env, "checkpoint", now, nil)
	require.NoError(t, err)
	require.Equal(t, v.ID(), body.Key)
}

func TestBadKeyFilesAreRefused(t *testing.T) {
	long := strings.Repeat("n", wire.MaxKeyIDLen)
	_, _, err := GenerateKey(long)
	require.ErrorContains(t, err, "want 1 to 55 bytes")
	_, _, err = GenerateKey("has space")
	require.Error(t, err)

	for _, text := range []string{"", "PRIVATE+KEY+x", "x+00000000+AA=="} {
		_, err := ParseSigningKey(text)
		require.Error(t, err, text)
		_, err = ParseVerifyingKey(text)
		require.Error(t, err, text)
	}
	// A valid note key whose name is too long for an envelope key id.
	private, public := longNameKeys(t, strings.Repeat("n", 56))
	_, err = ParseSigningKey(private)
	require.ErrorContains(t, err, "at most 55 bytes")
	_, err = ParseVerifyingKey(public)
	require.ErrorContains(t, err, "at most 55 bytes")
}

func longNameKeys(t *testing.T, name string) (private, public string) {
	t.Helper()
	private, public, err := note.GenerateKey(rand.Reader, name)
	require.NoError(t, err)
	return private, public
}
