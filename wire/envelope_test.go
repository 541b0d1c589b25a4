package wire

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"math"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// testKey derives a signing key from a name, so tests are repeatable.
func testKey(id string) SigningKey {
	seed := bytes.Repeat([]byte(id), ed25519.SeedSize)[:ed25519.SeedSize]
	return SigningKey{ID: id, Key: ed25519.NewKeyFromSeed(seed)}
}

func (k SigningKey) verifying() VerifyingKey {
	return VerifyingKey{ID: k.ID, Key: k.Key.Public().(ed25519.PublicKey)}
}

var t0 = time.UnixMilli(1_800_000_000_000)

// pair returns a sender's keyring signing with key and a receiver's that
// knows its public key.
func pair(t *testing.T, key SigningKey) (sender, receiver *Keyring) {
	t.Helper()
	sender = NewKeyring(time.Minute, time.Second)
	require.NoError(t, sender.SetSigner(key))
	receiver = NewKeyring(time.Minute, time.Second)
	require.NoError(t, receiver.Add(key.verifying()))
	return sender, receiver
}

func requireReason(t *testing.T, want string, err error) {
	t.Helper()
	require.Error(t, err)
	require.Equal(t, want, EnvelopeReason(err), err.Error())
}

func TestEnvelopeOpensUnderTheKeyThatSealedIt(t *testing.T) {
	sender, receiver := pair(t, testKey("a"))
	env, err := sender.Seal("ticket", []byte("payload"), t0, 30*time.Second)
	require.NoError(t, err)
	body, err := receiver.Open(env, "ticket", t0.Add(time.Second), NewReplayCache(10))
	require.NoError(t, err)
	require.Equal(t, "a", body.Key)
	require.Equal(t, "ticket", body.Purpose)
	require.Equal(t, []byte("payload"), body.Payload)
	require.Equal(t, t0.UnixMilli(), body.Issued)
	require.Equal(t, t0.Add(30*time.Second).UnixMilli(), body.Expires)
	require.Len(t, body.Nonce, EnvelopeNonceLen)

	// Two seals of one payload differ by their nonces.
	env2, err := sender.Seal("ticket", []byte("payload"), t0, 30*time.Second)
	require.NoError(t, err)
	require.NotEqual(t, env, env2)
}

func TestEnvelopeBytesAreTheSignedBodyAndItsSignature(t *testing.T) {
	k := testKey("a")
	b := EnvelopeBody{Key: "a", Purpose: "p", Nonce: make([]byte, EnvelopeNonceLen), Issued: 1, Expires: 2, Payload: []byte{9}}
	body, err := MarshalMsgpack(b)
	require.NoError(t, err)
	// Canonical msgpack: a map of the six one-letter keys in bytewise order.
	require.Equal(t, []byte{0x86, 0xa1, 'd', 0xc4, 0x01, 0x09, 0xa1, 'i', 0x01, 0xa1, 'k', 0xa1, 'a'}, body[:13])
	want, err := MarshalMsgpack(envelope{Body: body, Sig: ed25519.Sign(k.Key, append([]byte("gsd/envelope/v1\n"), body...))})
	require.NoError(t, err)
	require.Equal(t, want, SealBody(k, b))
}

func TestForgedEnvelopesAreRefused(t *testing.T) {
	sender, receiver := pair(t, testKey("a"))
	env, err := sender.Seal("ticket", []byte("payload"), t0, 30*time.Second)
	require.NoError(t, err)

	// Another key claiming a's id.
	forger := testKey("z")
	forger.ID = "a"
	b := EnvelopeBody{Key: "a", Purpose: "ticket", Nonce: make([]byte, EnvelopeNonceLen), Issued: t0.UnixMilli(), Expires: t0.Add(time.Second).UnixMilli()}
	_, err = receiver.Open(SealBody(forger, b), "ticket", t0, nil)
	requireReason(t, EnvelopeForged, err)

	// Any bit of a genuine envelope flipped (past the outer map's head):
	// forged, malformed, or an unknown key, never accepted.
	for i := 1; i < len(env); i++ {
		bad := bytes.Clone(env)
		bad[i] ^= 0x01
		_, err := receiver.Open(bad, "ticket", t0, nil)
		require.Error(t, err, "byte %d", i)
		require.Contains(t, []string{EnvelopeForged, EnvelopeMalformed, EnvelopeUnknownKey, EnvelopeExpired}, EnvelopeReason(err), "byte %d: %v", i, err)
	}

	// A genuine envelope opened for another purpose.
	_, err = receiver.Open(env, "checkpoint", t0, nil)
	requireReason(t, EnvelopeForged, err)
	require.ErrorContains(t, err, `signed for "ticket", opened as "checkpoint"`)
}

func TestReplayedEnvelopesAreRefused(t *testing.T) {
	sender, receiver := pair(t, testKey("a"))
	cache := NewReplayCache(10)
	env, err := sender.Seal("ticket", nil, t0, 30*time.Second)
	require.NoError(t, err)
	_, err = receiver.Open(env, "ticket", t0, cache)
	require.NoError(t, err)
	_, err = receiver.Open(env, "ticket", t0.Add(29*time.Second), cache)
	requireReason(t, EnvelopeReplayed, err)
	require.ErrorContains(t, err, "seen before")
	// Once it has expired the cache forgets it, and the expiry refuses it.
	_, err = receiver.Open(env, "ticket", t0.Add(30*time.Second), cache)
	requireReason(t, EnvelopeExpired, err)
	require.Equal(t, 1, cache.Len())
	other, err := sender.Seal("ticket", nil, t0.Add(30*time.Second), time.Second)
	require.NoError(t, err)
	_, err = receiver.Open(other, "ticket", t0.Add(30*time.Second), cache)
	require.NoError(t, err)
	require.Equal(t, 1, cache.Len(), "the expired entry was dropped")
}

func TestAFullReplayCacheRefusesWhatItCanNoLongerTellFromAReplay(t *testing.T) {
	sender, receiver := pair(t, testKey("a"))
	cache := NewReplayCache(2)
	seal := func(ttl time.Duration) []byte {
		env, err := sender.Seal("p", nil, t0, ttl)
		require.NoError(t, err)
		return env
	}
	first, second, third := seal(10*time.Second), seal(20*time.Second), seal(30*time.Second)
	for _, env := range [][]byte{first, second, third} {
		_, err := receiver.Open(env, "p", t0, cache)
		require.NoError(t, err)
	}
	require.Equal(t, 2, cache.Len(), "bounded")
	// first was forgotten: it and anything expiring as early are refused.
	_, err := receiver.Open(first, "p", t0, cache)
	requireReason(t, EnvelopeReplayed, err)
	require.ErrorContains(t, err, "no longer remembers")
	_, err = receiver.Open(seal(5*time.Second), "p", t0, cache)
	requireReason(t, EnvelopeReplayed, err)
	// What it remembers is still refused; later expiries are accepted.
	_, err = receiver.Open(third, "p", t0, cache)
	requireReason(t, EnvelopeReplayed, err)
	_, err = receiver.Open(seal(40*time.Second), "p", t0, cache)
	require.NoError(t, err)
	require.Equal(t, 1, NewReplayCache(0).max)
}

func TestExpiredEnvelopesAreRefused(t *testing.T) {
	sender, receiver := pair(t, testKey("a"))
	env, err := sender.Seal("p", nil, t0, 10*time.Second)
	require.NoError(t, err)
	_, err = receiver.Open(env, "p", t0.Add(10*time.Second), nil)
	requireReason(t, EnvelopeExpired, err)
	// Issued further ahead of the receiver's clock than the skew allows.
	_, err = receiver.Open(env, "p", t0.Add(-2*time.Second), nil)
	requireReason(t, EnvelopeExpired, err)
	require.ErrorContains(t, err, "ahead of this clock")
	_, err = receiver.Open(env, "p", t0.Add(-time.Second), nil)
	require.NoError(t, err, "within the skew")
}

func TestRotatedKeysVerifyForTheirGracePeriodOnly(t *testing.T) {
	oldKey, newKey := testKey("old"), testKey("new")
	sender, receiver := pair(t, oldKey)
	inFlight, err := sender.Seal("p", nil, t0, time.Minute)
	require.NoError(t, err)

	// Receivers learn the new key first; then the sender rotates.
	require.NoError(t, receiver.Add(newKey.verifying()))
	require.NoError(t, sender.Rotate(newKey, t0, 5*time.Second))
	require.NoError(t, receiver.Retire("old", t0.Add(5*time.Second)))
	require.Error(t, receiver.Retire("never", t0))
	fresh, err := sender.Seal("p", nil, t0, time.Minute)
	require.NoError(t, err)
	body, err := receiver.Open(fresh, "p", t0, nil)
	require.NoError(t, err)
	require.Equal(t, "new", body.Key, "the new key signs")
	_, err = receiver.Open(inFlight, "p", t0.Add(4*time.Second), nil)
	require.NoError(t, err, "the old key verifies during the grace period")
	_, err = receiver.Open(inFlight, "p", t0.Add(5*time.Second), nil)
	requireReason(t, EnvelopeUnknownKey, err)
	require.ErrorContains(t, err, "retired")
	_, err = receiver.Open(fresh, "p", t0.Add(5*time.Second), nil)
	require.NoError(t, err)

	// Rotating to the key that already signs retires nothing.
	require.NoError(t, sender.Rotate(newKey, t0, 0))
	_, err = sender.Open(fresh, "p", t0.Add(time.Hour-time.Minute), nil)
	requireReason(t, EnvelopeExpired, err)
	// A first signer has nothing to retire.
	first := NewKeyring(time.Minute, 0)
	require.NoError(t, first.Rotate(oldKey, t0, 0))
	_, err = first.Seal("p", nil, t0, time.Second)
	require.NoError(t, err)
	require.Error(t, first.Rotate(SigningKey{}, t0, 0))
}

func TestEnvelopesUnderUnknownKeysAreRefused(t *testing.T) {
	sender, _ := pair(t, testKey("a"))
	env, err := sender.Seal("p", nil, t0, time.Second)
	require.NoError(t, err)
	_, err = NewKeyring(time.Minute, 0).Open(env, "p", t0, nil)
	requireReason(t, EnvelopeUnknownKey, err)
	require.ErrorContains(t, err, `"a"`)
}

func TestMalformedEnvelopesAreRefused(t *testing.T) {
	k := testKey("a")
	_, receiver := pair(t, k)
	good := EnvelopeBody{Key: "a", Purpose: "p", Nonce: make([]byte, EnvelopeNonceLen), Issued: t0.UnixMilli(), Expires: t0.Add(time.Second).UnixMilli()}
	bodyOnly := func(b []byte) []byte {
		out, err := MarshalMsgpack(envelope{Body: b})
		require.NoError(t, err)
		return out
	}
	cases := map[string][]byte{
		"empty":        nil,
		"not msgpack":  []byte{0xc1},
		"too large":    make([]byte, MaxEnvelopeBytes+1),
		"body garbage": bodyOnly([]byte{0xc1}),
	}
	short := good
	short.Nonce = []byte{1}
	cases["short nonce"] = SealBody(k, short)
	long := good
	long.Expires = long.Issued + time.Hour.Milliseconds()
	cases["lifetime over the maximum"] = SealBody(k, long)
	backwards := good
	backwards.Expires = backwards.Issued
	cases["no lifetime"] = SealBody(k, backwards)
	forever := good
	forever.Issued, forever.Expires = math.MinInt64, math.MaxInt64 // a difference that overflows
	cases["from the beginning to the end of time"] = SealBody(k, forever)
	late := good
	late.Issued, late.Expires = math.MaxInt64-10, math.MaxInt64
	cases["issued at the end of time"] = SealBody(k, late)
	for name, b := range cases {
		_, err := receiver.Open(b, "p", t0, NewReplayCache(1))
		requireReason(t, EnvelopeMalformed, err)
		require.True(t, errors.Is(err, ErrEnvelopeMalformed), name)
	}
	require.Equal(t, "", EnvelopeReason(errors.New("other")))
}

func TestKeyringRefusesBadKeys(t *testing.T) {
	r := NewKeyring(time.Minute, 0)
	k := testKey("a")
	_, err := r.Seal("p", nil, t0, time.Second)
	require.ErrorContains(t, err, "no signing key")
	for name, err := range map[string]error{
		"empty id":          r.Add(VerifyingKey{Key: k.verifying().Key}),
		"long id":           r.Add(VerifyingKey{ID: strings.Repeat("x", MaxKeyIDLen+1), Key: k.verifying().Key}),
		"short public key":  r.Add(VerifyingKey{ID: "a", Key: []byte{1}}),
		"short private key": r.SetSigner(SigningKey{ID: "a", Key: []byte{1}}),
		"signer without id": r.SetSigner(SigningKey{Key: k.Key}),
		"id of another key": func() error { _ = r.Add(k.verifying()); return r.SetSigner(SigningKey{ID: "a", Key: testKey("b").Key}) }(),
		"same id other key": r.Add(VerifyingKey{ID: "a", Key: testKey("c").verifying().Key}),
		"lifetime zero":     func() error { _, err := NewKeyring(time.Minute, 0).Seal("p", nil, t0, 0); return err }(),
		"lifetime over max": func() error { _, err := r.Seal("p", nil, t0, time.Hour); return err }(),
	} {
		require.Error(t, err, name)
	}
	require.NoError(t, r.Add(k.verifying()), "the same key again")
}

// FuzzEnvelopeOpen: whatever the bytes, Open refuses them with a reason
// code or opens a genuine envelope; it never panics.
func FuzzEnvelopeOpen(f *testing.F) {
	sender, receiver := NewKeyring(time.Minute, time.Second), NewKeyring(time.Minute, time.Second)
	k := testKey("a")
	if err := sender.SetSigner(k); err != nil {
		f.Fatal(err)
	}
	if err := receiver.Add(k.verifying()); err != nil {
		f.Fatal(err)
	}
	env, err := sender.Seal("p", []byte("payload"), t0, time.Second)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(env)
	f.Add([]byte{0x82, 0xa1, 'b', 0xc6, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		body, err := receiver.Open(b, "p", t0, NewReplayCache(4))
		if err != nil {
			if EnvelopeReason(err) == "" {
				t.Fatalf("an error without a reason code: %v", err)
			}
			return
		}
		if body.Key != "a" || len(body.Nonce) != EnvelopeNonceLen {
			t.Fatalf("opened %+v", body)
		}
	})
}

func TestEnvelopesClaimingMoreThanTheyHoldAreRefusedWithoutAllocatingIt(t *testing.T) {
	_, receiver := pair(t, testKey("a"))
	deep := append(bytes.Repeat([]byte{0x91}, MsgpackMaxDepth+1), 0xc0)
	for name, b := range map[string][]byte{
		"a 4 GiB bin":           {0x82, 0xa1, 'b', 0xc6, 0xff, 0xff, 0xff, 0xff},
		"a 4 GiB body":          {0x81, 0xa1, 'b', 0xc4, 0x05, 0xc6, 0xff, 0xff, 0xff, 0xff},
		"an array of 4 billion": {0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0},
		"a map of 4 billion":    {0xdf, 0xff, 0xff, 0xff, 0xff, 0xc0},
		"too deep":              deep,
		"trailing bytes":        {0xc0, 0xc0},
		"not msgpack":           {0xc1},
		"nothing":               {},
	} {
		allocs := testing.AllocsPerRun(10, func() {
			_, err := receiver.Open(b, "p", t0, nil)
			requireReason(t, EnvelopeMalformed, err)
		})
		// A bounded number of small allocations (one run measured 21 for
		// the too-deep case), never one per claimed element; the bytes
		// are checked below.
		require.Less(t, allocs, float64(2*MsgpackMaxDepth+16), name)
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	before := ms.TotalAlloc
	_, err := receiver.Open([]byte{0x82, 0xa1, 'b', 0xc6, 0xff, 0xff, 0xff, 0xff}, "p", t0, nil)
	requireReason(t, EnvelopeMalformed, err)
	runtime.ReadMemStats(&ms)
	require.Less(t, ms.TotalAlloc-before, uint64(1<<20), "bytes allocated for an 8-byte envelope")
	// Well-formed nesting within the depth is fine for the walk.
	require.NoError(t, checkMsgpack(append(bytes.Repeat([]byte{0x91}, MsgpackMaxDepth), 0xc0)))
	require.NoError(t, checkMsgpack([]byte{0x92, 0x91, 0xc0, 0x80}))
}
