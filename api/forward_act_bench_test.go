package api

import (
	"context"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/api/internal/apitest"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/store"
	"github.com/prometheus/client_golang/prometheus"
)

// benchPair is a leader served over httptest and a follower (its edge
// only) whose leader is that server: what a play action entering a
// follower passes through, both sides in this process.
func benchPair(b *testing.B, opts ...func(*Config)) (follower *Server) {
	b.Helper()
	build := func(f *apitest.Fake) *Server {
		cfg := testConfig()
		for _, o := range opts {
			o(&cfg)
		}
		s, err := New(cfg, f, edge.NewSingleGroupRouter(f), prometheus.NewRegistry())
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(s.Close)
		return s
	}
	lf := apitest.NewFake()
	if err := lf.CreateWorld(context.Background(), "arena", fsm.Rules{}); err != nil {
		b.Fatal(err)
	}
	ts := httptest.NewServer(build(lf).Handler())
	b.Cleanup(ts.Close)
	ff := apitest.NewFake()
	ff.LeaderFlag.Store(false)
	ff.ActErr = store.ErrNotLeader
	ff.SetLeader("n1", ts.Listener.Addr().String())
	return build(ff)
}

// BenchmarkFollowerActOnLeader is one play action a follower forwards to
// its world's leader (ActOnLeader, as api/play's act calls it): the
// follower's encoding, the round trip and the leader's decoding, acting
// (on a fake group) and answer. Run with -benchmem and -cpuprofile to see
// what each side pays.
func BenchmarkFollowerActOnLeader(b *testing.B) {
	for _, bc := range []struct {
		name string
		opts []func(*Config)
	}{
		{"auth-off", nil},
		{"auth-hs256-secret", []func(*Config){withAuth, withSecret}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			f := benchPair(b, bc.opts...)
			token := ""
			if bc.opts != nil {
				token = apitest.Sign(b, jwt.SigningMethodHS256, apitest.Keys.HS, apitest.Claims("p1"))
			}
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				seq := uint64(i + 1)
				raw := strconv.AppendUint([]byte(`{"seq":`), seq, 10)
				raw = append(raw, `,"ops":[{"op":"set","entity":"p1","field":"x","value":12}]}`...)
				a := &fsm.Action{World: "arena", Player: "p1", Seq: seq, Priority: fsm.PriorityCritical,
					Ops: []fsm.Op{{Kind: fsm.OpSet, Entity: "p1", Field: "x", Value: fsm.Int(12)}}}
				ev, err := f.ActOnLeader(ctx, a, raw, token)
				if err != nil {
					b.Fatal(err)
				}
				if ev.Status != "applied" {
					b.Fatalf("status %q", ev.Status)
				}
			}
		})
	}
}

// BenchmarkFollowerActOnLeaderParallel is many play connections' actions
// forwarded at once (16 per core): the case where calls are shared.
func BenchmarkFollowerActOnLeaderParallel(b *testing.B) {
	f := benchPair(b)
	ctx := context.Background()
	var seq atomic.Uint64
	b.SetParallelism(16)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n := seq.Add(1)
			raw := strconv.AppendUint([]byte(`{"seq":`), n, 10)
			raw = append(raw, `,"ops":[{"op":"set","entity":"p1","field":"x","value":12}]}`...)
			a := &fsm.Action{World: "arena", Player: "p1", Seq: n, Priority: fsm.PriorityCritical,
				Ops: []fsm.Op{{Kind: fsm.OpSet, Entity: "p1", Field: "x", Value: fsm.Int(12)}}}
			if _, err := f.ActOnLeader(ctx, a, raw, ""); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
