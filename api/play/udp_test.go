package play

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math"
	"net"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/gsd-dev/gsd/api/internal/apitest"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
)

// value reads a counter or gauge.
func value(c prometheus.Metric) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return m.Gauge.GetValue()
}

// input is one op of a test packet.
type input struct {
	entity, field string
	value         fsm.Value
}

// udpBytes encodes a packet as docs/PROTOCOL.md describes it, independent
// of the decoder, and tags it with key.
func udpBytes(keyID, key []byte, seq uint64, inputTime int64, ins ...input) []byte {
	b := []byte{wire.UDPVersion}
	b = append(b, keyID...)
	b = binary.BigEndian.AppendUint64(b, seq)
	b = binary.BigEndian.AppendUint64(b, uint64(inputTime))
	b = append(b, byte(len(ins)))
	for _, in := range ins {
		b = append(b, byte(len(in.entity)))
		b = append(b, in.entity...)
		b = append(b, byte(len(in.field)))
		b = append(b, in.field...)
		b = append(b, byte(in.value.Kind))
		switch in.value.Kind {
		case fsm.KindInt:
			b = binary.BigEndian.AppendUint64(b, uint64(in.value.Int))
		case fsm.KindFloat:
			b = binary.BigEndian.AppendUint64(b, math.Float64bits(in.value.Float))
		case fsm.KindString:
			b = binary.BigEndian.AppendUint16(b, uint16(len(in.value.Str)))
			b = append(b, in.value.Str...)
		case fsm.KindBool:
			b = append(b, byte(in.value.Int))
		}
	}
	return append(b, wire.UDPTag(key, b)...)
}

// udpSession is a play connection with its UDP key.
type udpSession struct {
	ws         *websocket.Conn
	keyID, key []byte
	addr       string
}

// openUDPSession says hello as player and decodes the welcome's udp object.
func openUDPSession(t *testing.T, n *node, world, player string) udpSession {
	t.Helper()
	ws := dialPlay(t, n.env.WSURL(world))
	w := welcome(t, ws, player)
	info, ok := w["udp"].(map[string]any)
	require.True(t, ok, "welcome without udp: %v", w)
	id, err := base64.StdEncoding.DecodeString(info["key_id"].(string))
	require.NoError(t, err)
	key, err := base64.StdEncoding.DecodeString(info["key"].(string))
	require.NoError(t, err)
	require.Len(t, id, wire.UDPKeyIDLen)
	require.Len(t, key, wire.UDPKeyLen)
	return udpSession{ws: ws, keyID: id, key: key, addr: info["addr"].(string)}
}

func (s udpSession) packet(seq uint64, ins ...input) []byte {
	return udpBytes(s.keyID, s.key, seq, int64(seq)*1000, ins...)
}

// serveUDP starts n's UDP lane on loopback until the test ends.
func serveUDP(t *testing.T, n *node, opts ...func(*UDPConfig)) *UDP {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	cfg := DefaultUDPConfig()
	for _, o := range opts {
		o(&cfg)
	}
	u, err := n.env.srv.ServeUDP(pc, cfg, n.env.Reg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, u.Close()) })
	return u
}

// udpSender sends datagrams to u.
func udpSender(t *testing.T, u *UDP) func(b []byte) {
	t.Helper()
	c, err := net.Dial("udp", u.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return func(b []byte) {
		_, err := c.Write(b)
		require.NoError(t, err)
	}
}

// requireCount waits until u counted want datagrams with result.
func requireCount(t *testing.T, u *UDP, result string, want float64) {
	t.Helper()
	c := u.m.packets.WithLabelValues(result)
	require.Eventually(t, func() bool { return value(c) == want }, 10*time.Second, 2*time.Millisecond,
		"%s: got %v, want %v (all: %v)", result, value(c), want, udpCounts(u))
}

// udpCounts are u's packet counters by result, for failure messages.
func udpCounts(u *UDP) map[string]float64 {
	out := make(map[string]float64)
	for _, r := range udpResults {
		if v := value(u.m.packets.WithLabelValues(r)); v > 0 {
			out[r] = v
		}
	}
	return out
}

// uncoalesced turns bulk coalescing off: these tests read each bulk event
// (with its player and client seq) from the play connection.
func uncoalesced(c *nodeConfig) { c.Play.CoalesceBulk = false }

// nextEventMaps reads events until it has n and returns them.
func nextEventMaps(t *testing.T, c *websocket.Conn, n int) []map[string]any {
	t.Helper()
	var evs []map[string]any
	for len(evs) < n {
		m := wsRecv(t, c)
		if m["type"] != "events" {
			continue
		}
		for _, ev := range m["events"].([]any) {
			evs = append(evs, ev.(map[string]any))
		}
	}
	return evs
}

// posBody creates world arena with authoritative int fields x and y.
const posBody = `{"id":"arena","rules":{"fields":{"x":{"type":"int","policy":"authoritative"},"y":{"type":"int","policy":"authoritative"}}}}`

// change returns the value an event set on entity.field.
func change(t *testing.T, ev map[string]any, entity, field string) any {
	t.Helper()
	for _, c := range ev["changes"].([]any) {
		m := c.(map[string]any)
		if m["entity"] == entity && m["field"] == field {
			return m["value"]
		}
	}
	t.Fatalf("event %v does not change %s.%s", ev, entity, field)
	return nil
}

func TestUDPValidPacketIsAppliedAsTheSessionsPlayerAndReplayIsDropped(t *testing.T) {
	n := startLeaderWith(t, uncoalesced)
	u := serveUDP(t, n)
	n.env.Do("POST", "/v1/worlds", posBody)
	s := openUDPSession(t, n, "arena", "ann")
	require.Equal(t, u.Addr().String(), s.addr)
	send := udpSender(t, u)

	p := s.packet(1, input{"ann", "x", fsm.Int(5)}, input{"ann", "y", fsm.Int(-7)})
	send(p)
	ev := nextEventMaps(t, s.ws, 1)[0]
	require.Equal(t, "ann", ev["player"], "the player comes from the session")
	require.Equal(t, "bulk", ev["priority"])
	require.Equal(t, "applied", ev["status"])
	require.Equal(t, float64(1), ev["client_seq"])
	require.Equal(t, float64(5), change(t, ev, "ann", "x"))
	require.Equal(t, float64(-7), change(t, ev, "ann", "y"))
	requireCount(t, u, udpAccepted, 1)

	// The same bytes again: dropped before they reach the store.
	send(p)
	requireCount(t, u, udpReplayed, 1)
	send(s.packet(2, input{"ann", "x", fsm.Int(6)}))
	ev = nextEventMaps(t, s.ws, 1)[0]
	require.Equal(t, float64(2), ev["seq"], "the replay made no event")
	require.Equal(t, float64(2), ev["client_seq"])
	require.Eventually(t, func() bool {
		return value(u.m.actions.WithLabelValues("applied")) == 2
	}, 10*time.Second, 2*time.Millisecond)
	require.Equal(t, 1.0, value(u.m.keys))
}

func TestUDPForgedPacketsAreDropped(t *testing.T) {
	n := startLeaderWith(t, uncoalesced)
	u := serveUDP(t, n)
	n.env.Do("POST", "/v1/worlds", posBody)
	ann := openUDPSession(t, n, "arena", "ann")
	bob := openUDPSession(t, n, "arena", "bob")
	send := udpSender(t, u)

	// A flipped bit in the payload, then in the tag.
	p := ann.packet(1, input{"ann", "x", fsm.Int(5)})
	p[len(p)-wire.UDPTagLen-1] ^= 1
	send(p)
	p = ann.packet(1, input{"ann", "x", fsm.Int(5)})
	p[len(p)-1] ^= 1
	send(p)
	// bob's key id with a key that is not bob's (ann's): bob cannot be impersonated.
	send(udpBytes(bob.keyID, ann.key, 1, 0, input{"bob", "x", fsm.Int(9)}))
	requireCount(t, u, udpForged, 3)
	// A key id nobody was given.
	send(udpBytes([]byte("nobody!!"), ann.key, 1, 0, input{"ann", "x", fsm.Int(5)}))
	requireCount(t, u, udpUnknownKey, 1)

	// None of them consumed a seq: the genuine packets still apply.
	send(ann.packet(1, input{"ann", "x", fsm.Int(5)}))
	ev := nextEventMaps(t, bob.ws, 1)[0]
	require.Equal(t, "ann", ev["player"])
	require.Equal(t, float64(1), ev["seq"], "nothing forged was applied")
	send(bob.packet(1, input{"bob", "x", fsm.Int(9)}))
	ev = nextEventMaps(t, bob.ws, 1)[0]
	require.Equal(t, "bob", ev["player"])
	require.Equal(t, float64(2), ev["seq"])
}

func TestUDPReorderedPacketsLetTheLatestSeqWinAndOldSeqsOutsideTheWindowDrop(t *testing.T) {
	n := startLeaderWith(t, uncoalesced)
	u := serveUDP(t, n)
	n.env.Do("POST", "/v1/worlds", posBody)
	s := openUDPSession(t, n, "arena", "ann")
	send := udpSender(t, u)

	send(s.packet(10, input{"ann", "x", fsm.Int(10)}))
	require.Equal(t, float64(10), change(t, nextEventMaps(t, s.ws, 1)[0], "ann", "x"))
	// An older packet arriving late: its x is stale, its y is news.
	send(s.packet(9, input{"ann", "x", fsm.Int(9)}, input{"ann", "y", fsm.Int(9)}))
	ev := nextEventMaps(t, s.ws, 1)[0]
	require.Equal(t, float64(9), change(t, ev, "ann", "y"))
	require.Len(t, ev["changes"], 1, "the stale x was left out: %v", ev)
	// Older still, only x: stale as a whole.
	send(s.packet(8, input{"ann", "x", fsm.Int(8)}))
	requireCount(t, u, udpStale, 1)

	// A jump ahead, then a seq that fell out of the 1,024-wide window.
	send(s.packet(2000, input{"ann", "x", fsm.Int(2000)}))
	require.Equal(t, float64(2000), change(t, nextEventMaps(t, s.ws, 1)[0], "ann", "x"))
	send(s.packet(2000-udpWindowBits, input{"ann", "y", fsm.Int(1)}))
	requireCount(t, u, udpTooOld, 1)
	// Inside the window and never seen: applied.
	send(s.packet(2000-udpWindowBits+1, input{"ann", "y", fsm.Int(977)}))
	require.Equal(t, float64(977), change(t, nextEventMaps(t, s.ws, 1)[0], "ann", "y"))

	code, m := n.env.DoJSON("GET", "/v1/worlds/arena/entities/ann", "")
	require.Equal(t, 200, code, "%v", m)
	require.Equal(t, map[string]any{"x": float64(2000), "y": float64(977)}, m["fields"])
}

func TestUDPMalformedAndOversizedPacketsAreDroppedAndCounted(t *testing.T) {
	n := startLeaderWith(t, uncoalesced)
	u := serveUDP(t, n)
	n.env.Do("POST", "/v1/worlds", posBody)
	s := openUDPSession(t, n, "arena", "ann")
	send := udpSender(t, u)

	send(make([]byte, DefaultUDPConfig().MaxPacketBytes+1))
	requireCount(t, u, udpOversized, 1)
	bad := [][]byte{
		{},                                // empty
		make([]byte, wire.UDPMinPacket-1), // too short
		append([]byte{3}, s.packet(1, input{"ann", "x", fsm.Int(1)})[1:]...), // version 3
		s.packet(1), // no ops
		s.packet(0, input{"ann", "x", fsm.Int(1)}),                            // seq 0
		s.packet(1, input{"", "x", fsm.Int(1)}),                               // empty entity
		s.packet(1, input{"ann", "x", fsm.Float(math.NaN())}),                 // NaN
		s.packet(1, input{"ann", "x", fsm.Value{Kind: 9}}),                    // unknown type
		s.packet(1, input{"ann", "x", fsm.Value{Kind: fsm.KindBool, Int: 2}}), // bool 2
	}
	// A truncated op and trailing bytes, each with a valid tag.
	p := s.packet(1, input{"ann", "x", fsm.Int(1)})
	body := p[:len(p)-wire.UDPTagLen]
	bad = append(bad, append(append([]byte(nil), body[:len(body)-3]...), wire.UDPTag(s.key, body[:len(body)-3])...))
	long := append(append([]byte(nil), body...), 0)
	bad = append(bad, append(long, wire.UDPTag(s.key, long)...))
	for _, b := range bad {
		send(b)
	}
	requireCount(t, u, udpMalformed, float64(len(bad)))
	// The lane still works, and seq 1 was not used up.
	send(s.packet(1, input{"ann", "x", fsm.Int(1)}))
	require.Equal(t, float64(1), nextEventMaps(t, s.ws, 1)[0]["seq"])
}

func TestUDPKeyStopsWorkingWhenTheConnectionEndsAndAResumeGetsANewOne(t *testing.T) {
	n := startLeaderWith(t, fastPlay, uncoalesced)
	u := serveUDP(t, n)
	n.env.Do("POST", "/v1/worlds", posBody)
	ws := dialPlay(t, n.env.WSURL("arena"))
	w := welcome(t, ws, "ann")
	send := udpSender(t, u)
	keyOf := func(w map[string]any) ([]byte, []byte) {
		info := w["udp"].(map[string]any)
		id, _ := base64.StdEncoding.DecodeString(info["key_id"].(string))
		key, _ := base64.StdEncoding.DecodeString(info["key"].(string))
		return id, key
	}
	id, key := keyOf(w)
	require.NoError(t, ws.CloseNow())
	require.Eventually(t, func() bool { return value(u.m.keys) == 0 }, 10*time.Second, 2*time.Millisecond)
	send(udpBytes(id, key, 1, 0, input{"ann", "x", fsm.Int(1)}))
	requireCount(t, u, udpUnknownKey, 1)

	ws = dialPlay(t, n.env.WSURL("arena"))
	wsSend(t, ws, map[string]any{"type": "resume", "player": "ann", "session": w["session"], "resume_token": w["resume_token"]})
	w2 := wsRecv(t, ws)
	require.Equal(t, "welcome", w2["type"], "%v", w2)
	id2, key2 := keyOf(w2)
	require.NotEqual(t, id, id2)
	require.NotEqual(t, key, key2)
	send(udpBytes(id, key, 2, 0, input{"ann", "x", fsm.Int(2)}))
	requireCount(t, u, udpUnknownKey, 2)
	send(udpBytes(id2, key2, 3, 0, input{"ann", "x", fsm.Int(3)}))
	ev := nextEventMaps(t, ws, 1)[0]
	require.Equal(t, "ann", ev["player"])
	require.Equal(t, float64(3), ev["client_seq"])
}

func TestUDPApplyRefusesABannedPlayerAndCountsBackendErrors(t *testing.T) {
	fake := apitest.NewFake()
	e := newEnv(t, fake)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	u, err := e.srv.ServeUDP(pc, DefaultUDPConfig(), e.Reg)
	require.NoError(t, err)
	defer u.Close()
	c := &playConn{s: e.srv.Service, world: "arena", player: "ann", ctx: t.Context()}
	batch := map[fieldKey]udpInput{{"ann", "x"}: {seq: 3, value: fsm.Int(1)}}

	fake.Set(func(f *apitest.Fake) { f.BanMap = map[string]string{"arena/ann": "cheat"} })
	require.Equal(t, fsm.CodeBanned, u.apply(c, udpAction(c, batch)))
	require.Equal(t, 0, fake.Acts, "a banned player's input never reaches the store")

	fake.Set(func(f *apitest.Fake) { f.BanMap = nil; f.ActErr = fsm.ErrUnknownWorld })
	require.Equal(t, fsm.CodeUnknownWorld, u.apply(c, udpAction(c, batch)))
	require.Equal(t, fsm.Int(1), fake.LastAction.Ops[0].Value)
	require.Equal(t, "ann", fake.LastAction.Player)
	require.Equal(t, uint64(3), fake.LastAction.Seq)
	require.Equal(t, fsm.PriorityBulk, fake.LastAction.Priority)
}

func TestUDPActionTakesTheNewestSeqAndSortsItsOps(t *testing.T) {
	c := &playConn{world: "arena", player: "ann", role: fsm.RolePlayer}
	a := udpAction(c, map[fieldKey]udpInput{
		{"b", "x"}: {seq: 4, inputTime: 40, value: fsm.Int(4)},
		{"a", "y"}: {seq: 7, inputTime: 70, value: fsm.Int(7)},
		{"a", "x"}: {seq: 5, inputTime: 50, value: fsm.Int(5)},
	})
	require.Equal(t, uint64(7), a.Seq)
	require.Equal(t, int64(70), a.InputTime)
	require.Equal(t, []fsm.Op{
		{Kind: fsm.OpSet, Entity: "a", Field: "x", Value: fsm.Int(5)},
		{Kind: fsm.OpSet, Entity: "a", Field: "y", Value: fsm.Int(7)},
		{Kind: fsm.OpSet, Entity: "b", Field: "x", Value: fsm.Int(4)},
	}, a.Ops)
	require.Equal(t, fsm.RolePlayer, a.Role, "the connection's token's role")
	require.NoError(t, a.Validate())
}

func TestUDPLaneWithoutTheLaneHasNoUDPInWelcome(t *testing.T) {
	n := startLeaderWith(t, uncoalesced)
	n.env.Do("POST", "/v1/worlds", posBody)
	ws := dialPlay(t, n.env.WSURL("arena"))
	w := welcome(t, ws, "ann")
	require.NotContains(t, w, "udp")
}

func TestServeUDPRefusesBadConfigsTakenMetricsAndASecondLane(t *testing.T) {
	n := startLeaderWith(t, uncoalesced)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	defer pc.Close()
	bad := DefaultUDPConfig()
	bad.MaxPacketBytes = 10
	_, err = n.env.srv.ServeUDP(pc, bad, prometheus.NewRegistry())
	require.ErrorContains(t, err, "MaxPacketBytes")
	bad = DefaultUDPConfig()
	bad.MaxFields = 0
	require.ErrorContains(t, bad.Validate(), "MaxFields")

	reg := prometheus.NewRegistry()
	require.NoError(t, reg.Register(prometheus.NewGauge(prometheus.GaugeOpts{Name: "gsd_udp_keys"})))
	_, err = n.env.srv.ServeUDP(pc, DefaultUDPConfig(), reg)
	require.ErrorContains(t, err, "udp metrics")

	cfg := DefaultUDPConfig()
	cfg.Advertise = "0.0.0.0:7000"
	u, err := n.env.srv.ServeUDP(pc, cfg, prometheus.NewRegistry())
	require.NoError(t, err)
	_, err = n.env.srv.ServeUDP(pc, DefaultUDPConfig(), prometheus.NewRegistry())
	require.ErrorContains(t, err, "already")
	n.env.Do("POST", "/v1/worlds", posBody)
	ws := dialPlay(t, n.env.WSURL("arena"))
	require.Equal(t, "0.0.0.0:7000", welcome(t, ws, "ann")["udp"].(map[string]any)["addr"])
	require.NoError(t, u.Close())
	require.NoError(t, u.Close(), "a second Close is a no-op")
}

func TestUDPInputOnMoreFieldsThanMaxFieldsIsOverloaded(t *testing.T) {
	n := startLeaderWith(t, uncoalesced)
	u := serveUDP(t, n, func(c *UDPConfig) { c.MaxFields = 2 })
	n.env.Do("POST", "/v1/worlds", posBody)
	s := openUDPSession(t, n, "arena", "ann")
	send := udpSender(t, u)

	send(s.packet(1, input{"ann", "x", fsm.Int(1)}, input{"ann", "y", fsm.Int(1)}, input{"bob", "x", fsm.Int(1)}))
	requireCount(t, u, udpOverloaded, 1)
	// The refused packet added no field: two fields are taken.
	send(s.packet(2, input{"ann", "x", fsm.Int(1)}, input{"ann", "y", fsm.Int(2)}))
	require.Equal(t, float64(2), change(t, nextEventMaps(t, s.ws, 1)[0], "ann", "y"))
	// Known fields go on; a third one does not.
	send(s.packet(3, input{"ann", "x", fsm.Int(3)}))
	require.Equal(t, float64(3), change(t, nextEventMaps(t, s.ws, 1)[0], "ann", "x"))
	send(s.packet(4, input{"bob", "x", fsm.Int(1)}))
	requireCount(t, u, udpOverloaded, 2)
}

// BenchmarkUDPHandleDropsForged measures the cost of refusing a forged
// packet (lookup and tag check): what a flood costs the reader.
func BenchmarkUDPHandleDropsForged(b *testing.B) {
	benchHandle(b, true)
}

// BenchmarkUDPVerifyAndDecode measures tag check and decoding of a typical
// movement packet (three fields).
func BenchmarkUDPVerifyAndDecode(b *testing.B) {
	benchHandle(b, false)
}

func benchHandle(b *testing.B, forged bool) {
	key := make([]byte, wire.UDPKeyLen)
	p := udpBytes([]byte("abcdefgh"), key, 1, 1, input{"ann", "x", fsm.Float(1.5)},
		input{"ann", "y", fsm.Float(-2.25)}, input{"ann", "aim", fsm.Float(0.5)})
	if forged {
		p[len(p)-1] ^= 1
		u := &UDP{cfg: DefaultUDPConfig(), keys: map[[wire.UDPKeyIDLen]byte]*udpKey{wire.UDPKeyID(p): {key: key}}}
		b.ReportAllocs()
		for b.Loop() {
			if u.handle(p) != udpForged {
				b.Fatal("not forged")
			}
		}
		return
	}
	b.ReportAllocs()
	for b.Loop() {
		if !wire.UDPVerify(key, p) {
			b.Fatal("bad tag")
		}
		if _, err := decodeUDP(p); err != nil {
			b.Fatal(err)
		}
	}
}

func TestUDPInputOnAFollowerIsForwardedToTheLeader(t *testing.T) {
	n1 := startLeaderWith(t, uncoalesced)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	n2 := startNodeOn(t, "n2", false, ln, uncoalesced)
	// n2 reports what it reads, as gsd's --join does: the version gate
	// refuses a joiner below its members' floor.
	v := n2.st.Versions()
	join := fmt.Sprintf(`{"id":"n2","raft_addr":%q,"http_addr":%q,"versions":{"log":%d,"snapshot":%d,"wire":%d}}`,
		n2.raftAddr, n2.env.TS.Listener.Addr().String(), v.Log, v.Snapshot, v.Wire)
	code, m := n1.env.DoJSON("POST", "/v1/cluster/join", join)
	require.Equal(t, 200, code, "%v", m)
	require.Eventually(t, func() bool {
		_, addr := n2.st.Leader()
		return addr == n1.env.TS.Listener.Addr().String()
	}, 10*time.Second, 10*time.Millisecond)
	u := serveUDP(t, n2)
	n1.env.Do("POST", "/v1/worlds", posBody)
	require.Eventually(t, func() bool {
		code, _, _ := n2.env.Do("GET", "/v1/worlds/arena/hash", "")
		return code == 200
	}, 10*time.Second, 10*time.Millisecond, "the follower has the world")

	s := openUDPSession(t, n2, "arena", "ann")
	send := udpSender(t, u)
	send(udpBytes(s.keyID, s.key, 5, 1234, input{"ann", "x", fsm.Int(5)}, input{"ann", "y", fsm.Int(6)}))
	ev := nextEventMaps(t, s.ws, 1)[0]
	require.Equal(t, "ann", ev["player"])
	require.Equal(t, "bulk", ev["priority"])
	require.Equal(t, float64(5), ev["client_seq"])
	require.Equal(t, float64(5), change(t, ev, "ann", "x"))
	require.Equal(t, float64(6), change(t, ev, "ann", "y"))

	code, m = n1.env.DoJSON("DELETE", "/v1/cluster/nodes/n2", "")
	require.Equal(t, 200, code, "%v", m)
}
