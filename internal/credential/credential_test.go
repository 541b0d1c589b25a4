package credential

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const testSecret = "0123456789abcdef0123456789abcdef-cluster"

// writeFile writes b to name in dir and returns its path.
func writeFile(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, b, 0o600))
	return p
}

func TestValidClusterSecretWantsLengthAndHeaderSafeBytes(t *testing.T) {
	require.NoError(t, ValidClusterSecret([]byte(testSecret)))
	require.NoError(t, ValidClusterSecret([]byte(strings.Repeat("~", MinClusterSecretLen))))
	for bad, want := range map[string]string{
		"short":                          "the cluster secret must be at least 32 bytes",
		strings.Repeat("a", 31) + " ":    "the cluster secret must be printable ASCII without spaces (it travels in a header)",
		strings.Repeat("é", 20):          "the cluster secret must be printable ASCII without spaces (it travels in a header)",
		strings.Repeat("a", 32) + "\x7f": "the cluster secret must be printable ASCII without spaces (it travels in a header)",
	} {
		require.EqualError(t, ValidClusterSecret([]byte(bad)), want, "%q", bad)
	}
}

func TestLoadClusterSecretTrimsTheFileAndChecksIt(t *testing.T) {
	dir := t.TempDir()
	b, err := LoadClusterSecret(writeFile(t, dir, "good", []byte(" "+testSecret+"\n")))
	require.NoError(t, err)
	require.Equal(t, testSecret, string(b))

	short := writeFile(t, dir, "short", []byte("abc\n"))
	_, err = LoadClusterSecret(short)
	require.EqualError(t, err, "cluster secret "+short+": the cluster secret must be at least 32 bytes")

	_, err = LoadClusterSecret(filepath.Join(dir, "missing"))
	require.ErrorIs(t, err, os.ErrNotExist)
	require.ErrorContains(t, err, "cluster secret: open ")
}

func TestLoadHS256KeyTrimsTheFileAndWantsThirtyTwoBytes(t *testing.T) {
	dir := t.TempDir()
	key := strings.Repeat("k", MinHS256KeyLen)
	b, err := LoadHS256Key(writeFile(t, dir, "hs", []byte(key+"\n")))
	require.NoError(t, err)
	require.Equal(t, key, string(b))

	short := writeFile(t, dir, "short", []byte("abc\n"))
	_, err = LoadHS256Key(short)
	require.EqualError(t, err, "hs256 key "+short+": 3 bytes, need at least 32")

	_, err = LoadHS256Key(filepath.Join(dir, "absent"))
	require.ErrorIs(t, err, os.ErrNotExist)
	require.ErrorContains(t, err, "hs256 key: open ")
}

func TestLoadPublicKeysReadsRSAAndEd25519BlocksAndSkipsOthers(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	edPub, _, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	rsaDER, err := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	require.NoError(t, err)
	edDER, err := x509.MarshalPKIXPublicKey(edPub)
	require.NoError(t, err)

	var pems []byte
	pems = append(pems, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: rsaDER})...)
	pems = append(pems, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("skipped")})...)
	pems = append(pems, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: edDER})...)
	pems = append(pems, pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&rsaKey.PublicKey)})...)
	dir := t.TempDir()
	got, err := LoadPublicKeys(writeFile(t, dir, "pub.pem", pems))
	require.NoError(t, err)
	require.Len(t, got, 3)
	require.True(t, rsaKey.PublicKey.Equal(got[0]))
	require.True(t, edPub.Equal(got[1]))
	require.True(t, rsaKey.PublicKey.Equal(got[2]))
}

func TestLoadPublicKeysRefusesFilesWithoutAUsableKey(t *testing.T) {
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	ecDER, err := x509.MarshalPKIXPublicKey(&ecKey.PublicKey)
	require.NoError(t, err)
	dir := t.TempDir()

	empty := writeFile(t, dir, "empty.pem", []byte("no pem here"))
	_, err = LoadPublicKeys(empty)
	require.EqualError(t, err, "public keys "+empty+": no PEM public key found")

	bad := writeFile(t, dir, "bad.pem", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte("junk")}))
	_, err = LoadPublicKeys(bad)
	require.ErrorContains(t, err, "public keys "+bad+": ")

	ec := writeFile(t, dir, "ec.pem", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: ecDER}))
	_, err = LoadPublicKeys(ec)
	require.EqualError(t, err, "public keys "+ec+": *ecdsa.PublicKey is neither RSA nor Ed25519")

	_, err = LoadPublicKeys(filepath.Join(dir, "absent"))
	require.ErrorIs(t, err, os.ErrNotExist)
	require.ErrorContains(t, err, "public keys: open ")
}
