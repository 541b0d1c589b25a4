package wire

import (
	"testing"
	"time"
)

// BenchmarkEnvelopeSeal is one sender's cost per envelope (a 256-byte
// payload): the encoding and an ed25519 signature.
func BenchmarkEnvelopeSeal(b *testing.B) {
	r := NewKeyring(time.Minute, 0)
	if err := r.SetSigner(testKey("a")); err != nil {
		b.Fatal(err)
	}
	payload := make([]byte, 256)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Seal("relay", payload, t0, time.Second); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEnvelopeOpen is one receiver's cost per envelope: decoding, an
// ed25519 verification and the replay cache.
func BenchmarkEnvelopeOpen(b *testing.B) {
	sender := NewKeyring(time.Minute, 0)
	if err := sender.SetSigner(testKey("a")); err != nil {
		b.Fatal(err)
	}
	receiver := NewKeyring(time.Minute, 0)
	if err := receiver.Add(testKey("a").verifying()); err != nil {
		b.Fatal(err)
	}
	const n = 1024
	envs := make([][]byte, n)
	for i := range envs {
		env, err := sender.Seal("relay", make([]byte, 256), t0, time.Minute)
		if err != nil {
			b.Fatal(err)
		}
		envs[i] = env
	}
	b.ReportAllocs()
	var cache *ReplayCache
	i := 0
	for b.Loop() {
		if i%n == 0 {
			cache = NewReplayCache(n) // the same envelopes again would be replays
		}
		if _, err := receiver.Open(envs[i%n], "relay", t0, cache); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
