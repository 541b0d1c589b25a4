package client

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// framesFor builds what a play connection receives in the play bench:
// events frames of n events as the load generator's actions make them
// (a hit: an incr and a set, two entities' versions) and a delta frame of
// n players' moves, in codec k's encoding.
func framesFor(tb testing.TB, k playCodec, n int) (events, delta []byte) {
	var evs []string
	for i := 1; i <= n; i++ {
		evs = append(evs, fmt.Sprintf(`{"world":"bench","seq":%d,"index":%d,"time":1700000000000000%03d,"player":"lg-p%d","client_seq":%d,`+
			`"priority":"critical","status":"applied","versions":{"lg-p%d":{"hp":%d},"lg-p%d":{"best":%d}},`+
			`"changes":[{"entity":"lg-p%d","field":"hp","op":"incr","value":-7,"version":%d},{"entity":"lg-p%d","field":"best","op":"set","value":7,"version":%d}]}`,
			i, 900+i, i, i, 40+i, i+1, i, i, i, i+1, i, i, i))
	}
	ev := fmt.Sprintf(`{"type":"events","from":1,"seq":%d,"events":[%s]}`, n, strings.Join(evs, ","))
	var ents []string
	for i := 1; i <= n; i++ {
		ents = append(ents, fmt.Sprintf(`"lg-p%d":{"fields":{"x":{"value":%d,"version":%d},"y":{"value":%d,"version":%d}}}`, i, 100+i, i, 200+i, i))
	}
	dl := fmt.Sprintf(`{"type":"delta","from":1,"seq":%d,"tick":3,"entities":{%s}}`, n, strings.Join(ents, ","))
	enc := func(s string) []byte {
		if !k.msgpack {
			return []byte(s)
		}
		b, err := k.marshal(jsonToAny(tb, s))
		if err != nil {
			tb.Fatal(err)
		}
		return b
	}
	return enc(ev), enc(dl)
}

// benchPlay is a Play with no connection whose handled frames a
// benchmark drains.
func benchPlay(headersOnly bool, k playCodec) *Play {
	p := &Play{world: "bench", codec: k, opts: PlayOptions{HeadersOnly: headersOnly}, events: make(chan item, 64)}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	return p
}

// frame decodes and handles one frame as the connection's reader does,
// having received up to seq start (so a frame from start+1 is new), and
// returns what it queued for Next, appended to out[:0].
func (p *Play) frame(tb testing.TB, b []byte, start uint64, out []item) []item {
	p.received, p.lastEvent = start, start
	if err := p.message(nil, p.codec.messageType(), b); err != nil {
		tb.Fatal(err)
	}
	its := out[:0]
	for {
		select {
		case it := <-p.events:
			its = append(its, it)
		default:
			return its
		}
	}
}

// BenchmarkPlayFrame is the cost of one frame on a play connection's
// reader (decode and queue for Next), whole and with HeadersOnly, for an
// events frame of 1 and of 10 events and a delta of 10 entities.
func BenchmarkPlayFrame(b *testing.B) {
	for _, k := range []playCodec{{}, {msgpack: true}} {
		enc := "json"
		if k.msgpack {
			enc = "msgpack"
		}
		ev1, _ := framesFor(b, k, 1)
		ev10, delta10 := framesFor(b, k, 10)
		for _, fr := range []struct {
			name string
			b    []byte
		}{{"events1", ev1}, {"events10", ev10}, {"delta10", delta10}} {
			for _, mode := range []struct {
				name string
				lean bool
			}{{"whole", false}, {"headers", true}} {
				b.Run(enc+"/"+fr.name+"/"+mode.name, func(b *testing.B) {
					p := benchPlay(mode.lean, k)
					defer p.cancel()
					b.ReportAllocs()
					b.SetBytes(int64(len(fr.b)))
					var out []item
					for b.Loop() {
						out = p.frame(b, fr.b, 0, out)
					}
				})
			}
		}
	}
}
