package play

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
	"github.com/prometheus/client_golang/prometheus"
)

// UDPConfig configures the UDP input lane (docs/PROTOCOL.md, "UDP input
// lane").
type UDPConfig struct {
	// Advertise is the address players send to, given in the welcome
	// (default: the socket's address; an unspecified host such as
	// 0.0.0.0 tells the client to use the WebSocket's host).
	Advertise string
	// MaxPacketBytes bounds one datagram; a bigger one is dropped.
	MaxPacketBytes int
	// MaxFields bounds the (entity, field) pairs one connection may send
	// over UDP, whose latest seq the lane remembers.
	MaxFields int
}

// DefaultUDPConfig returns the defaults.
func DefaultUDPConfig() UDPConfig {
	return UDPConfig{MaxPacketBytes: 1200, MaxFields: 1024}
}

// Validate checks the config.
func (c UDPConfig) Validate() error {
	if c.MaxPacketBytes < wire.UDPMinPacket || c.MaxPacketBytes > 65507 {
		return fmt.Errorf("udp config: MaxPacketBytes must be %d..65507", wire.UDPMinPacket)
	}
	if c.MaxFields < 1 {
		return errors.New("udp config: MaxFields must be > 0")
	}
	return nil
}

// Results of a datagram, the label of gsd_udp_packets_total.
const (
	udpAccepted     = "accepted"      // its newer ops, or its action, are queued for the store
	udpOversized    = "oversized"     // over MaxPacketBytes
	udpMalformed    = "malformed"     // too short, bad version, bad ops or params
	udpUnknownKey   = "unknown_key"   // no such key: never given, or its connection ended
	udpForged       = "forged"        // wrong tag for the key
	udpRawForbidden = "raw_forbidden" // version 1 ops the world's rules do not let the player write
	udpReplayed     = "replayed"      // seq already seen with this key
	udpTooOld       = "too_old"       // seq below the replay window
	udpStale        = "stale"         // every op's field (or the action) has a newer accepted seq
	udpOverloaded   = "overloaded"    // too many fields, or the queue is full
)

var udpResults = []string{udpAccepted, udpOversized, udpMalformed, udpUnknownKey, udpForged,
	udpRawForbidden, udpReplayed, udpTooOld, udpStale, udpOverloaded}

// udpRulesTTL is how long the lane trusts its copy of the worlds' rules
// for the raw gate (rawAllowed) before it reads them again.
const udpRulesTTL = time.Second

// udpMetrics count datagrams by result and the actions they became.
type udpMetrics struct {
	packets *prometheus.CounterVec
	actions *prometheus.CounterVec
	keys    prometheus.Gauge
}

func newUDPMetrics(reg prometheus.Registerer) (*udpMetrics, error) {
	m := &udpMetrics{
		packets: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gsd_udp_packets_total", Help: "UDP input datagrams received, by result.",
		}, []string{"result"}),
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gsd_udp_actions_total", Help: "Actions built from UDP input, by outcome (event status or error code).",
		}, []string{"result"}),
		keys: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gsd_udp_keys", Help: "UDP session keys in use (one per play connection).",
		}),
	}
	for _, c := range []prometheus.Collector{m.packets, m.actions, m.keys} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("api udp metrics: %w", err)
		}
	}
	for _, r := range udpResults {
		m.packets.WithLabelValues(r)
	}
	return m, nil
}

// UDP is a node's UDP input lane: one socket, a reader, and per play
// connection a key and a worker that turns its inputs into bulk actions.
type UDP struct {
	s    *Service
	cfg  UDPConfig
	pc   net.PacketConn
	addr string
	m    *udpMetrics

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // the reader and the workers

	mu     sync.Mutex
	keys   map[[wire.UDPKeyIDLen]byte]*udpKey
	byConn map[*playConn]*udpKey

	rulesMu sync.Mutex
	rulesAt time.Time             // when rules was read; zero: never
	rules   map[string]fsm.Schema // world → its rules' schema, as this node applied them
}

// fieldKey names one field of one entity.
type fieldKey struct{ entity, field string }

// udpInput is the newest accepted value of one field.
type udpInput struct {
	seq       uint64
	inputTime int64
	value     fsm.Value
}

// udpCall is the newest accepted invocation of one declared action.
type udpCall struct {
	seq       uint64
	inputTime int64
	params    []fsm.Param
}

// udpKey is one play connection's key and input state.
type udpKey struct {
	id   [wire.UDPKeyIDLen]byte
	key  []byte
	conn *playConn

	mu        sync.Mutex
	win       replayWindow
	latest    map[fieldKey]uint64   // the highest accepted seq per field
	pending   map[fieldKey]udpInput // accepted, not yet proposed
	latestAct map[string]uint64     // the highest accepted seq per declared action
	calls     map[string]udpCall    // accepted, not yet proposed
	running   bool                  // a worker drains pending and calls
}

// ServeUDP starts the UDP input lane on pc: from now on every play
// connection's welcome carries a key for it. Its metrics go to reg. Close
// stops it; the Server's own Close does not.
func (s *Service) ServeUDP(pc net.PacketConn, cfg UDPConfig, reg prometheus.Registerer) (*UDP, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m, err := newUDPMetrics(reg)
	if err != nil {
		return nil, err
	}
	addr := cfg.Advertise
	if addr == "" {
		addr = pc.LocalAddr().String()
	}
	u := &UDP{s: s, cfg: cfg, pc: pc, addr: addr, m: m,
		keys: make(map[[wire.UDPKeyIDLen]byte]*udpKey), byConn: make(map[*playConn]*udpKey)}
	u.ctx, u.cancel = context.WithCancel(context.Background())
	if !s.udp.CompareAndSwap(nil, u) {
		return nil, errors.New("api: the UDP lane is already served")
	}
	u.wg.Add(1)
	go u.read()
	return u, nil
}

// Addr returns the address the lane listens on.
func (u *UDP) Addr() net.Addr { return u.pc.LocalAddr() }

// Close stops the lane: it closes the socket, abandons the inputs not yet
// proposed and waits for the workers.
func (u *UDP) Close() error {
	u.s.udp.CompareAndSwap(u, nil)
	u.cancel()
	err := u.pc.Close()
	u.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// udpOpen gives c a fresh key when the lane is on; nil when it is off.
// ws_session.go calls it before the welcome.
func (s *Service) udpOpen(c *playConn) *wire.UDPInfo {
	u := s.udp.Load()
	if u == nil {
		return nil
	}
	k := &udpKey{key: make([]byte, wire.UDPKeyLen), conn: c,
		latest: make(map[fieldKey]uint64), pending: make(map[fieldKey]udpInput),
		latestAct: make(map[string]uint64), calls: make(map[string]udpCall)}
	_, _ = rand.Read(k.key)
	u.mu.Lock()
	for {
		_, _ = rand.Read(k.id[:])
		if u.keys[k.id] == nil {
			break
		}
	}
	u.keys[k.id] = k
	u.byConn[c] = k
	u.mu.Unlock()
	u.m.keys.Inc()
	return &wire.UDPInfo{Addr: u.addr, KeyID: base64.StdEncoding.EncodeToString(k.id[:]),
		Key: base64.StdEncoding.EncodeToString(k.key)}
}

// udpClose forgets c's key: ws.go calls it when the connection has ended.
func (s *Service) udpClose(c *playConn) {
	u := s.udp.Load()
	if u == nil {
		return
	}
	u.mu.Lock()
	k := u.byConn[c]
	if k != nil {
		delete(u.byConn, c)
		delete(u.keys, k.id)
	}
	u.mu.Unlock()
	if k != nil {
		u.m.keys.Dec()
	}
}

// read receives datagrams until the socket closes.
func (u *UDP) read() {
	defer u.wg.Done()
	buf := make([]byte, u.cfg.MaxPacketBytes+1)
	for {
		n, _, err := u.pc.ReadFrom(buf)
		if err != nil {
			if u.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			u.s.log.Debug("udp: read", "err", err)
			continue
		}
		u.m.packets.WithLabelValues(u.handle(buf[:n])).Inc()
	}
}

// handle checks one datagram and queues its newer inputs; it returns the
// result label. The checks run cheapest first, and nothing is remembered
// before the tag has proved the sender holds the key.
func (u *UDP) handle(b []byte) string {
	if len(b) > u.cfg.MaxPacketBytes {
		return udpOversized
	}
	if len(b) < wire.UDPMinPacket || b[0] != wire.UDPVersion && b[0] != wire.UDPVersionAction {
		return udpMalformed
	}
	u.mu.Lock()
	k := u.keys[wire.UDPKeyID(b)]
	u.mu.Unlock()
	if k == nil {
		return udpUnknownKey
	}
	if !wire.UDPVerify(k.key, b) {
		return udpForged
	}
	p, err := decodeUDP(b)
	if err != nil {
		return udpMalformed
	}
	if p.Action == "" && !u.rawAllowed(k.conn, p.Ops) {
		return udpRawForbidden
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	switch k.win.check(p.Seq) {
	case windowReplayed:
		return udpReplayed
	case windowTooOld:
		return udpTooOld
	}
	if p.Action != "" {
		return u.queueCall(k, p)
	}
	// Latest input wins: an op on a field that already has a newer seq is
	// dropped, so a late packet never overwrites a newer value.
	fresh := p.Ops[:0]
	var added int
	for _, op := range p.Ops {
		f := fieldKey{op.Entity, op.Field}
		last, seen := k.latest[f]
		if seen && last >= p.Seq {
			continue
		}
		if !seen {
			added++
		}
		fresh = append(fresh, op)
	}
	if len(fresh) == 0 {
		return udpStale
	}
	if len(k.latest)+len(k.latestAct)+added > u.cfg.MaxFields || len(k.pending)+len(fresh) > fsm.MaxOpsPerAction {
		return udpOverloaded
	}
	for _, op := range fresh {
		f := fieldKey{op.Entity, op.Field}
		k.latest[f] = p.Seq
		k.pending[f] = udpInput{seq: p.Seq, inputTime: p.InputTime, value: op.Value}
	}
	u.run(k)
	return udpAccepted
}

// queueCall queues a version 2 packet's declared action, under k.mu:
// latest input wins per action name, as per field for version 1, so a
// late packet never replaces a newer invocation of the same action. The
// names count towards MaxFields with the fields.
func (u *UDP) queueCall(k *udpKey, p *wire.UDPPacket) string {
	last, seen := k.latestAct[p.Action]
	if seen && last >= p.Seq {
		return udpStale
	}
	if !seen && len(k.latest)+len(k.latestAct)+1 > u.cfg.MaxFields {
		return udpOverloaded
	}
	k.latestAct[p.Action] = p.Seq
	k.calls[p.Action] = udpCall{seq: p.Seq, inputTime: p.InputTime, params: udpParams(p)}
	u.run(k)
	return udpAccepted
}

// run starts k's worker unless it runs; under k.mu.
func (u *UDP) run(k *udpKey) {
	if !k.running {
		k.running = true
		u.wg.Add(1)
		go u.drain(k)
	}
}

// rawAllowed reports whether the world's rules, as this node applied them
// lately, may let c's player set ops: a version 1 packet that they cannot
// is refused before it costs a proposal. It mirrors fsm's checkRaw
// without the state: an owner-writable field passes (Apply checks the
// owner), and Apply has the last word on what passes.
func (u *UDP) rawAllowed(c *playConn, ops []fsm.Op) bool {
	if c.role == "" || c.role == fsm.RoleServer || c.role == fsm.RoleAdmin {
		return true
	}
	s, ok := u.schema(c.world)
	if !ok {
		return true // no such world here (yet): the store answers
	}
	raw := len(s.Actions) == 0 || c.role != fsm.RolePlayer && s.Roles[c.role].Raw
	for _, op := range ops {
		switch s.Access[op.Field].Write {
		case "server":
			return false
		case "owner":
			continue
		}
		if !raw {
			return false
		}
	}
	return true
}

// schema returns world's rules' schema, read again from the node's state
// when the copy is older than udpRulesTTL or lacks the world.
func (u *UDP) schema(world string) (fsm.Schema, bool) {
	u.rulesMu.Lock()
	defer u.rulesMu.Unlock()
	s, ok := u.rules[world]
	if ok && time.Since(u.rulesAt) < udpRulesTTL {
		return s, true
	}
	infos := u.s.b.Worlds()
	u.rules = make(map[string]fsm.Schema, len(infos))
	for _, w := range infos {
		u.rules[w.ID] = w.Rules.Schema
	}
	u.rulesAt = time.Now()
	s, ok = u.rules[world]
	return s, ok
}

// drain proposes k's pending inputs and calls until none are left: one
// action at a time per connection, so inputs arriving meanwhile coalesce
// into the next one, newest value per field and newest call per declared
// action. A round proposes the set ops first, then the calls by name.
func (u *UDP) drain(k *udpKey) {
	defer u.wg.Done()
	for {
		k.mu.Lock()
		batch, calls := k.pending, k.calls
		// A closed lane or connection abandons what is left: its key is
		// gone, so nothing more comes.
		if len(batch)+len(calls) == 0 || u.ctx.Err() != nil || k.conn.ctx.Err() != nil {
			k.running = false
			k.mu.Unlock()
			return
		}
		// A map taken is replaced; an empty one stays with k and is not
		// this round's: handle may fill it once k.mu is released, and a
		// round reading it then would propose what the next round
		// proposes again (an undeclared call was counted twice so).
		if len(batch) > 0 {
			k.pending = make(map[fieldKey]udpInput)
		} else {
			batch = nil
		}
		if len(calls) > 0 {
			k.calls = make(map[string]udpCall)
		} else {
			calls = nil
		}
		k.mu.Unlock()
		if len(batch) > 0 {
			u.m.actions.WithLabelValues(u.apply(k.conn, udpAction(k.conn, batch))).Inc()
		}
		for _, name := range slices.Sorted(maps.Keys(calls)) {
			u.m.actions.WithLabelValues(u.apply(k.conn, udpCallAction(k.conn, name, calls[name]))).Inc()
		}
	}
}

// udpAction builds the bulk action of a batch of inputs: ops in (entity,
// field) order, the client seq and input time of the newest input. Each
// packet's seq is in one batch at most, so no two actions share a seq.
func udpAction(c *playConn, batch map[fieldKey]udpInput) *fsm.Action {
	a := &fsm.Action{World: c.world, Player: c.player, Role: c.role, Priority: fsm.PriorityBulk, Ops: make([]fsm.Op, 0, len(batch))}
	for f, in := range batch {
		a.Ops = append(a.Ops, fsm.Op{Kind: fsm.OpSet, Entity: f.entity, Field: f.field, Value: in.value})
		if in.seq > a.Seq {
			a.Seq, a.InputTime = in.seq, in.inputTime
		}
	}
	slices.SortFunc(a.Ops, func(x, y fsm.Op) int {
		return cmp.Or(cmp.Compare(x.Entity, y.Entity), cmp.Compare(x.Field, y.Field))
	})
	return a
}

// udpCallAction builds the bulk action of one declared action's call:
// the packet's seq and input time, its params; Apply validates it on
// every replica like the same action sent over the WebSocket.
func udpCallAction(c *playConn, name string, call udpCall) *fsm.Action {
	return &fsm.Action{World: c.world, Player: c.player, Role: c.role, Priority: fsm.PriorityBulk,
		Seq: call.seq, InputTime: call.inputTime, Name: name, Params: call.params}
}

// apply proposes one action as the connection's player, through the same
// path as the connection's WebSocket actions, and returns the outcome.
func (u *UDP) apply(c *playConn, a *fsm.Action) string {
	if err := u.s.CheckBan(c.world, c.player); err != nil {
		return u.outcome(err)
	}
	if err := u.s.Admit(nil, c.player, "udp"); err != nil {
		return u.outcome(err)
	}
	raw, err := udpBody(a)
	if err != nil {
		return u.outcome(fmt.Errorf("%w: encode udp action: %v", edge.ErrInternal, err))
	}
	ctx, cancel := context.WithTimeout(c.ctx, u.s.Config().RequestTimeout)
	defer cancel()
	stop := context.AfterFunc(u.ctx, cancel)
	defer stop()
	ev, err := c.actOnLeader(ctx, a, raw) // a moved world's action follows it, as over WebSocket (follow.go)
	if err != nil {
		return u.outcome(err)
	}
	return ev.Status
}

// udpBody is a's body as a follower forwards it to the leader (the wire
// form of a play action).
func udpBody(a *fsm.Action) ([]byte, error) {
	var params map[string]fsm.Value
	if a.Name != "" {
		params = make(map[string]fsm.Value, len(a.Params))
		for _, p := range a.Params {
			params[p.Name] = p.Value
		}
	}
	return json.Marshal(struct {
		Player    string               `json:"player"`
		Seq       uint64               `json:"seq"`
		Priority  string               `json:"priority"`
		InputTime int64                `json:"input_time,omitempty"`
		Ops       []fsm.Op             `json:"ops,omitempty"`
		Action    string               `json:"action,omitempty"`
		Params    map[string]fsm.Value `json:"params,omitempty"`
	}{a.Player, a.Seq, "bulk", a.InputTime, a.Ops, a.Name, params})
}

// outcome is an error's label, and logs it: nobody else hears of it.
func (u *UDP) outcome(err error) string {
	_, body := u.s.ErrorFor(err, true)
	u.s.log.Debug("udp: action not committed", "code", body.Code, "err", err)
	return body.Code
}
