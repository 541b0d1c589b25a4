package meta

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/gsd-dev/gsd/shard"
	"github.com/hashicorp/raft"
)

// Proposals reach the meta leader over the meta group's own Layer: a
// connection that starts with forwardMagic carries one proposal instead
// of Raft RPCs. Raft starts every connection with an RPC type byte (0-4
// in v1.7.3), so the magic cannot be Raft's; the Mux's group header
// (0xF7) was read before the Layer saw the connection. No second group
// id is reserved, and the proposal travels the same (TLS) mux as Raft.
//
// After the magic: the request is a uint32 length (big endian) and the
// encoded Command; the answer a uint32 length and forwardAnswer as JSON.
//
// A connection that starts with probeMagic asks which meta commands the
// member reads (the gate): the answer is a uint32 length and probeAnswer
// as JSON. A member on a binary before the probe hands the connection to
// Raft, which closes it on the unknown RPC type: the prober reads it as
// "does not read them".
const (
	forwardMagic byte = 0xF8
	probeMagic   byte = 0xF9
	// readsLevel is what this binary's DecodeCommand reads: 1 the first
	// commands, 2 adds assign_world's expect, 3 the voter replacement
	// (replace_voter, voter_ready, replace_done and their field new), 4
	// what remove_node and replace_voter record in the state
	// (State.Removed, Replacement.Since: in snapshots, which an older
	// binary refuses to restore), 5 mark_down and its field nodes
	// (State.Down). The FSM's pick leaving out nodes marked down needs
	// no level: only mark_down marks one, and every member reads it.
	readsLevel = 5
	// probeTimeout bounds one member's answer to the gate's probe.
	probeTimeout = 5 * time.Second
	// maxForward bounds a request or an answer.
	maxForward = 1 << 20
	// peekTimeout bounds how long an accepted connection may take to
	// send its first byte.
	peekTimeout = 10 * time.Second
)

// forwardAnswer is the leader's answer to a forwarded proposal.
type forwardAnswer struct {
	Shard  uint64   `json:"shard,omitempty"`
	Voters []string `json:"voters,omitempty"`
	New    string   `json:"new,omitempty"` // replace_voter's new voter
	// Index is the meta log index that applied the proposal, so the
	// forwarding node can wait for its own replica to apply it. A leader
	// on an older binary sends none (an older forwarder ignores it: the
	// answer is decoded without DisallowUnknownFields).
	Index uint64 `json:"index,omitempty"`
	Code  string `json:"code,omitempty"` // "", bad_command, refused, not_leader, failed
	Error string `json:"error,omitempty"`
}

// codes maps the sentinels to their codes on the wire, and back, most
// specific first (a not_found refusal is also refused).
var codes = []struct {
	code string
	errs []error
}{
	{"bad_command", []error{ErrBadCommand}},
	{"not_found", []error{ErrRefused, ErrNotFound}},
	{"elsewhere", []error{ErrRefused, ErrElsewhere}},
	{"refused", []error{ErrRefused}},
	{"not_leader", []error{ErrNotLeader}},
	{"version_gate", []error{ErrGate}},
}

// probeAnswer is a member's answer to the gate's probe.
type probeAnswer struct {
	Reads int `json:"reads"` // readsLevel
	// Applied is how far the member applied the meta log, for the
	// leader's promotion of a nonvoter (members.go); a member on an
	// older binary sends none.
	Applied uint64 `json:"applied,omitempty"`
}

// needsLevel is the readsLevel a member must have to apply c as this
// binary does.
func needsLevel(c Command) int {
	switch {
	case c.Op == OpMarkDown:
		return 5
	case c.Op == OpRemoveNode || isReplace(c.Op):
		return 4
	}
	if c.Expect != nil {
		return 2
	}
	return 1
}

// gate refuses, with ErrGate, a command that some member of the meta
// group would not decode: an older replica would refuse the entry while
// newer ones apply it, and their maps would differ. The members are the
// Raft configuration's servers and the configured ones (nonvoters the
// leader has not added yet); each is asked (probe), so a member that
// does not answer closes the gate too. A node marked down is waited for
// only while it is in the configuration (down.go).
func (g *Group) gate(ctx context.Context, c Command) error {
	return g.gateExcept(ctx, c, nil)
}

// gateExcept is gate without asking the nodes skip (mark_down's, which
// admitDown found do not answer and takes out of the configuration).
func (g *Group) gateExcept(ctx context.Context, c Command, skip []string) error {
	need := needsLevel(c)
	if need <= 1 {
		return nil // every binary reads it
	}
	addrs := map[raft.ServerID]raft.ServerAddress{}
	m := g.fsm.members()
	removed := m.removed
	for _, srv := range g.cfg.Servers {
		if g.cfg.Voters > 0 && removed[string(srv.ID)] || m.down[string(srv.ID)] {
			continue // removed from the map or marked down: the leader never adds it
		}
		addrs[srv.ID] = srv.Address
	}
	f := g.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return fmt.Errorf("%w: meta configuration: %w", ErrNotLeader, err)
	}
	for _, srv := range f.Configuration().Servers {
		if g.cfg.Voters > 0 && removed[string(srv.ID)] {
			// remove_node took it out of the map; the leader removes it
			// from the configuration (members.go). Leaving, most often
			// down, it must not close the gate for the nodes that stay:
			// a second dead node could not be removed otherwise.
			continue
		}
		addrs[srv.ID] = srv.Address
	}
	ask := make(map[string]raft.ServerAddress, len(addrs))
	for id, addr := range addrs {
		if string(id) == g.cfg.ID || slices.Contains(skip, string(id)) {
			continue
		}
		if c.Op == OpRemoveNode && string(id) == c.Node {
			// The node leaves, most often down: whether it reads the
			// record of its removal does not matter, and waiting for it
			// would keep a dead node in the map and the meta group.
			continue
		}
		ask[string(id)] = addr
	}
	// Every member at once: members that do not answer cost one probe
	// wait together, not one each. The first refusal in id order is
	// reported, so the error names the same member whatever the timing.
	got := g.probeAll(ctx, ask)
	for _, id := range slices.Sorted(maps.Keys(ask)) {
		p := got[id]
		if p.err != nil {
			return fmt.Errorf("%w: %s needs every meta member to read level %d; member %s did not answer (an older gsd, or down): %w: upgrade or restart it first, or if it is dead for good mark it down (gsdctl node down %s)",
				ErrGate, c.Op, need, id, p.err, id)
		}
		if p.a.Reads < need {
			return fmt.Errorf("%w: %s needs every meta member to read level %d; member %s reads %d: upgrade it first", ErrGate, c.Op, need, id, p.a.Reads)
		}
	}
	return nil
}

// probeFunc asks the member at addr which meta commands it reads.
type probeFunc func(ctx context.Context, addr raft.ServerAddress) (probeAnswer, error)

// probeMember asks the member at addr which meta commands it reads and
// how far it applied the meta log.
func (g *Group) probeMember(ctx context.Context, addr raft.ServerAddress) (probeAnswer, error) {
	deadline := time.Now().Add(g.probeWait())
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	conn, err := g.layer.Dial(addr, time.Until(deadline))
	if err != nil {
		return probeAnswer{}, err
	}
	defer conn.Close()
	if err := conn.SetDeadline(deadline); err != nil {
		return probeAnswer{}, fmt.Errorf("%w: %w", errNoProbeAnswer, err)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	if _, err := conn.Write([]byte{probeMagic}); err != nil {
		return probeAnswer{}, fmt.Errorf("%w: %w", errNoProbeAnswer, err)
	}
	b, err := readFrame(conn)
	if err != nil {
		return probeAnswer{}, fmt.Errorf("%w: %w", errNoProbeAnswer, err)
	}
	var a probeAnswer
	if err := json.Unmarshal(b, &a); err != nil {
		return probeAnswer{}, fmt.Errorf("%w: bad probe answer: %w", errNoProbeAnswer, err)
	}
	return a, nil
}

// probeWait is how long one probe may take: probeTimeout unless a test
// set another.
func (g *Group) probeWait() time.Duration {
	if g.cfg.probeTimeout > 0 {
		return g.cfg.probeTimeout
	}
	return probeTimeout
}

// errNoProbeAnswer is probeMember's error once the dial succeeded: the
// member accepted the connection (a gsd from before the probe closes
// it) but gave no answer. Something listens there, so it is not down.
var errNoProbeAnswer = errors.New("accepted the connection but gave no probe answer")

func answerOf(res Result, err error) forwardAnswer {
	a := forwardAnswer{Shard: res.Shard, Voters: res.Voters, New: res.New, Index: res.Index}
	if err == nil {
		return a
	}
	a.Code, a.Error = "failed", err.Error()
	for _, c := range codes {
		if errors.Is(err, c.errs[len(c.errs)-1]) {
			a.Code = c.code
			break
		}
	}
	return a
}

func (a forwardAnswer) result() (Result, error) {
	if a.Code == "" {
		return Result{Shard: a.Shard, Voters: a.Voters, New: a.New, Index: a.Index}, nil
	}
	for _, c := range codes {
		if a.Code == c.code {
			err := fmt.Errorf("%w (at the meta leader): %s", c.errs[len(c.errs)-1], a.Error)
			if len(c.errs) > 1 {
				err = fmt.Errorf("%w: %w", c.errs[0], err)
			}
			return Result{}, err
		}
	}
	return Result{}, fmt.Errorf("meta leader: %s", a.Error)
}

// writeFrame writes a length-prefixed frame.
func writeFrame(w io.Writer, b []byte) error {
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(b)))
	if _, err := w.Write(append(n[:], b...)); err != nil {
		return err
	}
	return nil
}

// readFrame reads a length-prefixed frame of at most maxForward bytes.
func readFrame(r io.Reader) ([]byte, error) {
	var n [4]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return nil, err
	}
	size := binary.BigEndian.Uint32(n[:])
	if size > maxForward {
		return nil, fmt.Errorf("%w: a frame of %d bytes", ErrBadCommand, size)
	}
	b := make([]byte, size)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	return b, nil
}

// forward sends c to the meta leader at addr and returns its answer.
func (g *Group) forward(ctx context.Context, addr raft.ServerAddress, c Command) (Result, error) {
	b, err := c.Encode()
	if err != nil {
		return Result{}, err
	}
	deadline := time.Now().Add(g.cfg.ApplyTimeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	conn, err := g.layer.Dial(addr, time.Until(deadline))
	if err != nil {
		return Result{}, fmt.Errorf("%w: forward to %s: %w", ErrNotLeader, addr, err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(deadline); err != nil {
		return Result{}, fmt.Errorf("%w: forward to %s: %w", ErrNotLeader, addr, err)
	}
	// After the deadline is set, so that a cancellation is not undone.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	req := append([]byte{forwardMagic}, 0, 0, 0, 0)
	binary.BigEndian.PutUint32(req[1:], uint32(len(b)))
	if _, err := conn.Write(append(req, b...)); err != nil {
		return Result{}, fmt.Errorf("%w: forward to %s: %w", ErrNotLeader, addr, err)
	}
	ab, err := readFrame(conn)
	if err != nil {
		// The leader may have applied it: the outcome is unknown.
		return Result{}, fmt.Errorf("%w: forward to %s: no answer: %w", ErrNotLeader, addr, err)
	}
	var a forwardAnswer
	if err := json.Unmarshal(ab, &a); err != nil {
		return Result{}, fmt.Errorf("meta leader %s: bad answer: %w", addr, err)
	}
	return a.result()
}

// splitLayer is the stream layer the meta group's Raft runs on: it takes
// the connections of the meta group's Layer, hands Raft's to Raft and
// serves forwarded proposals itself.
type splitLayer struct {
	*shard.Layer
	g     *Group
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
	wg    sync.WaitGroup

	mu      sync.Mutex
	pending map[net.Conn]struct{} // connections being peeked at or served
}

var _ raft.StreamLayer = (*splitLayer)(nil)

func newSplitLayer(l *shard.Layer, g *Group) *splitLayer {
	s := &splitLayer{Layer: l, g: g, conns: make(chan net.Conn), done: make(chan struct{}), pending: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go s.run()
	return s
}

// Accept waits for the next Raft connection.
func (s *splitLayer) Accept() (net.Conn, error) {
	select {
	case c := <-s.conns:
		return c, nil
	case <-s.done:
		return nil, fmt.Errorf("meta group: %w", shard.ErrClosed)
	}
}

// Close stops accepting, closes the Layer and the connections not handed
// to Raft yet. wait waits for the goroutines.
func (s *splitLayer) Close() error {
	s.once.Do(func() {
		close(s.done)
		s.Layer.Close()
		s.mu.Lock()
		for c := range s.pending {
			c.Close()
		}
		s.mu.Unlock()
	})
	return nil
}

// wait waits until the accept loop and every connection's goroutine are done.
func (s *splitLayer) wait() { s.wg.Wait() }

func (s *splitLayer) run() {
	defer s.wg.Done()
	for {
		c, err := s.Layer.Accept()
		if err != nil {
			return // closed
		}
		if !s.track(c) {
			c.Close()
			return
		}
		s.wg.Add(1)
		go s.route(c)
	}
}

// track records c as pending; false once closed.
func (s *splitLayer) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.done:
		return false
	default:
	}
	s.pending[c] = struct{}{}
	return true
}

func (s *splitLayer) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.pending, c)
	s.mu.Unlock()
}

// route reads c's first byte: a forwarded proposal is served here, the
// rest goes to Raft with that byte replayed.
func (s *splitLayer) route(c net.Conn) {
	defer s.wg.Done()
	var first [1]byte
	err := c.SetReadDeadline(time.Now().Add(peekTimeout))
	if err == nil {
		_, err = io.ReadFull(c, first[:])
	}
	if err == nil {
		err = c.SetReadDeadline(time.Time{})
	}
	if err != nil {
		s.untrack(c)
		c.Close()
		return
	}
	switch first[0] {
	case forwardMagic:
		s.serve(c)
		s.untrack(c)
		c.Close()
		return
	case lastMagic:
		s.serveLast(c)
		s.untrack(c)
		c.Close()
		return
	case probeMagic:
		ab, _ := json.Marshal(probeAnswer{Reads: readsLevel, Applied: s.g.appliedIndex()}) // numbers: cannot fail
		if c.SetDeadline(time.Now().Add(peekTimeout)) == nil {
			_ = writeFrame(c, ab)
		}
		s.untrack(c)
		c.Close()
		return
	}
	s.untrack(c)
	select {
	case s.conns <- &prefixConn{Conn: c, prefix: first[:]}:
	case <-s.done:
		c.Close()
	}
}

// serve answers one forwarded proposal: applied here when this node
// leads the meta group, never forwarded again.
func (s *splitLayer) serve(c net.Conn) {
	if err := c.SetDeadline(time.Now().Add(peekTimeout + s.g.cfg.ApplyTimeout)); err != nil {
		return
	}
	b, err := readFrame(c)
	if err != nil {
		return
	}
	var res Result
	cmd, err := DecodeCommand(b)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), s.g.cfg.ApplyTimeout)
		res, err = s.g.apply(ctx, cmd)
		cancel()
	}
	ab, _ := json.Marshal(answerOf(res, err)) // strings and numbers: cannot fail
	_ = writeFrame(c, ab)
}

// prefixConn replays the bytes read to route a connection.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}
