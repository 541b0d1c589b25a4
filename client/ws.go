package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/gsd-dev/gsd/wire"
)

// PlaySubprotocol is the JSON play protocol (docs/PROTOCOL.md).
const PlaySubprotocol = wire.SubprotocolJSON

// ErrPlayClosed is returned by a Play after Close.
var ErrPlayClosed = errors.New("gsd/client: play connection closed")

// PlayOptions configures a play connection.
type PlayOptions struct {
	// Token is the player's JWT (servers with auth on).
	Token string
	// Player names the player (servers with auth off).
	Player string
	// Buffer is how many received events wait for Next (default 1024).
	// When it is full the connection stops reading, and a server that
	// cannot write for long cuts it off; the Play then resumes.
	Buffer int
	// AckInterval is how often the events returned by Next are
	// acknowledged (default 100ms).
	AckInterval time.Duration
	// ReadLimit bounds one message from the server (default 64 MiB).
	ReadLimit int64
	// HTTPClient dials the WebSocket (default: the Client's).
	HTTPClient *http.Client
	// TokenSource, when set, gives the token for each connect and resume
	// in place of Token (token.go). The server closes a connection with
	// 4401 when its token expires; with a TokenSource that is not the end:
	// the Play fetches a fresh token and resumes, losing no event. A
	// second refusal in a row of a freshly fetched token ends the Play,
	// as does an error of the TokenSource (Next returns it, wrapped).
	// Called from the Play's goroutine with a context that ends at Close;
	// it may block (to ask an identity service), which delays the resume.
	TokenSource func(ctx context.Context) (string, error)
	// Encoding is the subprotocol: EncodingJSON ("json", the default,
	// gsd.json.v1) or EncodingMsgpack ("msgpack", gsd.msgpack.v1).
	Encoding string
}

// CloseError is a play connection ended by the server with a close code
// (docs/PROTOCOL.md): 4000 + an HTTP status with a gsd code in Reason, or a
// standard WebSocket code.
type CloseError struct {
	Code   int
	Reason string
}

func (e *CloseError) Error() string { return fmt.Sprintf("gsd: play closed %d: %s", e.Code, e.Reason) }

// terminal reports whether resuming cannot help: the server refused who we
// are, what we sent, or the session itself.
func (e *CloseError) terminal() bool {
	switch e.Code {
	case 4400, 4401, 4403, 4404, 4409, 4413, int(websocket.StatusNormalClosure), int(websocket.StatusMessageTooBig):
		return true
	}
	return false
}

// Play is one player's session in one world over a WebSocket, resumed
// transparently after drops: Next returns the committed events of the
// world the server sends this player from the session's start, in seq
// order, without gaps or duplicates: every event, unless the server
// coalesces bulk changes (then they come as deltas, see DeltaStatus) or
// filters by area of interest. Actions are answered by their committed events and re-sent
// (same seq, so idempotent) after a resume. Safe for concurrent use, but
// Next is meant for one reader.
type Play struct {
	c     *Client
	world string
	opts  PlayOptions
	codec playCodec

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	events chan item
	pongs  chan pong
	ready  chan struct{} // closed after the first welcome

	mu          sync.Mutex
	conn        *websocket.Conn
	session     string
	resumeToken string
	received    uint64 // world seq the received frames cover (queued for Next)
	lastEvent   uint64 // seq of the last individual event received
	delivered   uint64 // world seq covered by what Next returned
	acked       uint64 // last ack sent on the current connection
	pending     map[uint64]*pendingAct
	resumes     int
	tok         string // the TokenSource's latest token (token.go)
	authFails   int    // token refusals in a row (token.go; run's only)
	err         error  // why the Play ended
	data        map[string]wire.Value
	udp         *UDPInfo // the current connection's UDP lane key (udp.go)
	// A transfer (transfer.go): where to resume next, with which ticket,
	// and the other nodes the welcomes named.
	moveTo  string
	ticket  string
	learned []string
}

type pendingAct struct {
	msg  []byte
	done chan actResult
}

type actResult struct {
	ev  wire.Event
	err error
}

type pong struct{ t, server int64 }

// DeltaStatus is the Status of the events Next returns for a "delta" frame
// (docs/PROTOCOL.md): bulk changes the server coalesced, each field's
// latest value and version (op "set"; op "delete" with the entity's last
// version for a deleted entity), covering every event up to Seq. Apply a
// change only when its version is newer than the one you hold: after a
// resume a delta may repeat changes.
const DeltaStatus = "delta"

// item is one entry for Next: an event or a delta, and the world seq the
// client may acknowledge once Next returned it.
type item struct {
	ev      wire.Event
	covered uint64
	skip    bool // only moves the covered seq (an empty delta)
}

// Play opens a play session in world and returns once the server welcomed
// it. The session lives until Close, ctx ends, or the server refuses it
// for good (the error Next then returns).
func (c *Client) Play(ctx context.Context, world string, opts PlayOptions) (*Play, error) {
	if opts.Buffer <= 0 {
		opts.Buffer = 1024
	}
	if opts.AckInterval <= 0 {
		opts.AckInterval = 100 * time.Millisecond
	}
	if opts.ReadLimit <= 0 {
		opts.ReadLimit = 64 << 20
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = c.hc
	}
	codec, err := codecFor(opts.Encoding)
	if err != nil {
		return nil, err
	}
	p := &Play{c: c, world: world, opts: opts, codec: codec, done: make(chan struct{}), ready: make(chan struct{}),
		events: make(chan item, opts.Buffer), pongs: make(chan pong, 1), pending: make(map[uint64]*pendingAct)}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	go p.run()
	select {
	case <-p.ready:
		return p, nil
	case <-p.done:
		return nil, p.err
	case <-ctx.Done():
		p.cancel()
		<-p.done
		return nil, ctx.Err()
	}
}

// Session returns the session id and how many times it resumed.
func (p *Play) Session() (id string, resumes int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.session, p.resumes
}

// Data returns the player's critical data as of the last welcome.
func (p *Play) Data() map[string]wire.Value {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.data
}

// Next returns the next committed event of the world (or a delta: Status
// DeltaStatus).
func (p *Play) Next(ctx context.Context) (wire.Event, error) {
	for {
		var it item
		select {
		case it = <-p.events:
		default:
			select {
			case it = <-p.events:
			case <-p.done:
				return wire.Event{}, p.err
			case <-ctx.Done():
				return wire.Event{}, ctx.Err()
			}
		}
		p.mu.Lock()
		p.delivered = max(p.delivered, it.covered)
		p.mu.Unlock()
		if !it.skip {
			return it.ev, nil
		}
	}
}

// Act submits an action over the play connection and returns its committed
// event. The player is the session's. Across a resume the action is sent
// again with the same seq, so it applies at most once.
func (p *Play) Act(ctx context.Context, a ActionRequest) (wire.Event, error) {
	if a.Seq == 0 {
		return wire.Event{}, errors.New("gsd/client: an action needs a seq > 0 (its idempotency key)")
	}
	msg, err := p.codec.actionMsg(a)
	if err != nil {
		return wire.Event{}, err
	}
	pa := &pendingAct{msg: msg, done: make(chan actResult, 1)}
	p.mu.Lock()
	if p.err != nil {
		p.mu.Unlock()
		return wire.Event{}, p.err
	}
	if _, dup := p.pending[a.Seq]; dup {
		p.mu.Unlock()
		return wire.Event{}, fmt.Errorf("gsd/client: seq %d already in flight", a.Seq)
	}
	p.pending[a.Seq] = pa
	conn := p.conn
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.pending, a.Seq)
		p.mu.Unlock()
	}()
	if conn != nil {
		_ = conn.Write(ctx, p.codec.messageType(), msg) // on failure the resume re-sends it
	}
	select {
	case r := <-pa.done:
		return r.ev, r.err
	case <-p.done:
		return wire.Event{}, p.err
	case <-ctx.Done():
		return wire.Event{}, ctx.Err()
	}
}

// Ping measures the round trip to the server with an application-level ping.
func (p *Play) Ping(ctx context.Context) (time.Duration, error) {
	p.mu.Lock()
	conn := p.conn
	p.mu.Unlock()
	if conn == nil {
		return 0, errors.New("gsd/client: not connected")
	}
	t := time.Now().UnixNano()
	if err := p.write(ctx, conn, map[string]any{"type": wire.TypePing, "t": t}); err != nil {
		return 0, err
	}
	for {
		select {
		case pg := <-p.pongs:
			if pg.t == t {
				return time.Duration(time.Now().UnixNano() - t), nil
			}
		case <-p.done:
			return 0, p.err
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

// Close ends the session for good (the server forgets it) and the
// connection.
func (p *Play) Close() error {
	p.finish(ErrPlayClosed)
	p.mu.Lock()
	conn := p.conn
	p.mu.Unlock()
	if conn != nil {
		p.sendAck(conn)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if p.write(ctx, conn, map[string]string{"type": wire.TypeBye}) == nil {
			// The server closes after forgetting the session.
			select {
			case <-p.done:
			case <-ctx.Done():
			}
		}
		cancel()
	}
	p.cancel()
	<-p.done
	return nil
}

// Drop cuts the current connection without a close handshake, as a network
// failure would; the Play resumes. For tests and chaos drills.
func (p *Play) Drop() {
	p.mu.Lock()
	conn := p.conn
	p.mu.Unlock()
	if conn != nil {
		_ = conn.CloseNow()
	}
}

func (p *Play) finish(err error) {
	p.mu.Lock()
	if p.err == nil {
		p.err = err
	}
	p.mu.Unlock()
}

// run connects, and reconnects with resume, until the Play ends.
func (p *Play) run() {
	defer close(p.done)
	defer p.cancel()
	backoff := p.c.minBackoff
	addr := 0
	for attempt := 0; ; attempt++ {
		if p.ctx.Err() != nil {
			p.finish(ErrPlayClosed)
			return
		}
		addrs := p.addrs()
		base := addrs[addr%len(addrs)]
		if to := p.takeMove(); to != "" {
			base = to
		}
		if err := p.refreshToken(); err != nil {
			p.finish(err)
			return
		}
		mark := p.welcomes()
		err := p.connect(base)
		if p.ctx.Err() != nil {
			p.finish(ErrPlayClosed)
			return
		}
		if p.retryAuth(err, mark) {
			backoff = p.c.minBackoff
			continue // at once, with a fresh token
		}
		var ce *CloseError
		if errors.Is(err, errMoved) || p.ticketRefused(err, base) {
			backoff = p.c.minBackoff
			continue // resume at once, where the server said
		}
		if errors.As(err, &ce) && ce.terminal() {
			p.finish(err)
			return
		}
		var he *Error
		if errors.As(err, &he) && (he.Status == http.StatusUnauthorized || he.Status == http.StatusForbidden || he.Status == http.StatusNotFound) {
			p.finish(err)
			return
		}
		if errors.As(err, &ce) && (strings.Contains(ce.Reason, CodeNotLeader) || ce.Code == CloseMoved || ce.Code == int(websocket.StatusGoingAway)) || !errors.As(err, &ce) {
			addr++ // another node may serve us better
		}
		select {
		case <-time.After(backoff):
		case <-p.ctx.Done():
		}
		backoff = min(backoff*2, p.c.maxBackoff)
		if err == nil {
			backoff = p.c.minBackoff
		}
	}
}

// connect runs one connection: dial, hello or resume, then read until it
// fails.
func (p *Play) connect(base string) error {
	hdr := http.Header{}
	token := p.token()
	if token != "" {
		hdr.Set("Authorization", "Bearer "+token)
	}
	u := "ws" + strings.TrimPrefix(base, "http") + path("worlds", p.world, "play")
	dctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	conn, resp, err := websocket.Dial(dctx, u, &websocket.DialOptions{
		HTTPClient: p.opts.HTTPClient, HTTPHeader: hdr, Subprotocols: []string{p.codec.subprotocol()},
	})
	cancel()
	if err != nil {
		if resp != nil && resp.StatusCode >= 400 {
			return &Error{Status: resp.StatusCode, Message: err.Error()}
		}
		return &connError{addr: base, err: err}
	}
	defer conn.CloseNow()
	conn.SetReadLimit(p.opts.ReadLimit)

	p.mu.Lock()
	first := p.session == ""
	hello := map[string]any{"type": wire.TypeHello, "token": token, "player": p.opts.Player}
	if !first {
		hello = map[string]any{"type": wire.TypeResume, "token": token, "player": p.opts.Player,
			"session": p.session, "resume_token": p.resumeToken, "last_seq": p.received}
		if p.ticket != "" {
			hello["ticket"] = p.ticket
		}
	}
	p.mu.Unlock()
	if err := p.write(p.ctx, conn, hello); err != nil {
		return closeErr(err)
	}
	var w wire.ServerMsg
	if err := p.read(conn, &w); err != nil {
		return err
	}
	if w.Type != wire.TypeWelcome {
		return &CloseError{Code: 4400, Reason: "expected welcome, got " + w.Type}
	}
	p.mu.Lock()
	if first {
		p.session, p.resumeToken, p.received = w.Session, w.ResumeToken, w.Seq
		p.delivered, p.acked, p.lastEvent = w.Seq, w.Seq, w.Seq
	} else {
		p.resumes++
		p.received = max(p.received, w.Seq)
	}
	p.data = w.Data
	p.udp = udpLane(w.UDP, base)
	p.ticket = "" // used
	p.learn(w.Nodes)
	p.conn = conn
	resend := make([][]byte, 0, len(p.pending))
	for _, pa := range p.pending {
		resend = append(resend, pa.msg)
	}
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.conn = nil
		p.udp = nil
		p.mu.Unlock()
	}()
	if first {
		close(p.ready)
	}
	for _, m := range resend {
		if err := conn.Write(p.ctx, p.codec.messageType(), m); err != nil {
			return closeErr(err)
		}
	}
	// Acks go out from their own goroutine, so a full event buffer (the
	// reader blocked on it) does not stop them.
	actx, stop := context.WithCancel(p.ctx)
	defer stop()
	go func() {
		t := time.NewTicker(p.opts.AckInterval)
		defer t.Stop()
		for {
			select {
			case <-actx.Done():
				return
			case <-t.C:
				p.sendAck(conn)
			}
		}
	}()
	for {
		var m wire.ServerMsg
		if err := p.read(conn, &m); err != nil {
			return err
		}
		if err := p.handle(conn, &m); err != nil {
			return err
		}
	}
}

// handle acts on one message of an established connection.
func (p *Play) handle(conn *websocket.Conn, m *wire.ServerMsg) error {
	switch m.Type {
	case wire.TypeEvents:
		if m.From != 0 {
			return p.handleEvents(m)
		}
		for _, ev := range m.Events { // a server without coverage: every event, in order
			p.mu.Lock()
			last := p.received
			p.mu.Unlock()
			switch {
			case ev.Seq <= last:
				continue // already have it (a resume overlapping)
			case ev.Seq != last+1:
				return fmt.Errorf("%w: got seq %d after %d", ErrGap, ev.Seq, last)
			}
			if err := p.queue(item{ev: ev, covered: ev.Seq}); err != nil {
				return err
			}
			p.mu.Lock()
			p.received, p.lastEvent = ev.Seq, ev.Seq
			p.mu.Unlock()
		}
	case wire.TypeDelta:
		return p.handleDelta(m)
	case wire.TypeResult, wire.TypeError:
		r := actResult{}
		if m.Type == wire.TypeResult && m.Event != nil {
			r.ev = *m.Event
		} else {
			r.err = &Error{Status: m.Status, Code: m.Code, Message: m.Error}
		}
		p.mu.Lock()
		pa := p.pending[m.Seq]
		p.mu.Unlock()
		if pa != nil {
			select {
			case pa.done <- r:
			default:
			}
		}
	case wire.TypeTransfer:
		return p.moved(m)
	case wire.TypePing:
		return p.write(p.ctx, conn, map[string]any{"type": wire.TypePong, "t": m.T})
	case wire.TypePong:
		select {
		case p.pongs <- pong{t: m.T, server: m.ServerTime}:
		default:
		}
	}
	return nil
}

// queue hands it to Next, waiting while the buffer is full.
func (p *Play) queue(it item) error {
	select {
	case p.events <- it:
		return nil
	case <-p.ctx.Done():
		return p.ctx.Err()
	}
}

// cover checks that a frame starting at from follows what was received.
func (p *Play) cover(from uint64) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if from > p.received+1 {
		return fmt.Errorf("%w: a frame from seq %d after seq %d", ErrGap, from, p.received)
	}
	return nil
}

// handleEvents queues an events frame's new events; the frame covers the
// world up to m.Seq.
func (p *Play) handleEvents(m *wire.ServerMsg) error {
	if err := p.cover(m.From); err != nil {
		return err
	}
	queued := false
	for _, ev := range m.Events {
		p.mu.Lock()
		last := p.lastEvent
		p.mu.Unlock()
		if ev.Seq <= last {
			continue // already have it (a resume overlapping)
		}
		queued = true
		if err := p.queue(item{ev: ev, covered: min(ev.Seq, m.Seq)}); err != nil {
			return err
		}
		p.mu.Lock()
		p.lastEvent = ev.Seq
		p.received = max(p.received, min(ev.Seq, m.Seq))
		p.mu.Unlock()
	}
	p.mu.Lock()
	p.received = max(p.received, m.Seq)
	p.mu.Unlock()
	if !queued {
		return p.queue(item{covered: m.Seq, skip: true})
	}
	return nil
}

// handleDelta queues a delta frame as one event of Status DeltaStatus.
func (p *Play) handleDelta(m *wire.ServerMsg) error {
	if err := p.cover(m.From); err != nil {
		return err
	}
	ev := wire.Event{World: p.world, Seq: m.Seq, Priority: "bulk", Status: DeltaStatus}
	ids := make([]string, 0, len(m.Entities))
	for id := range m.Entities {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		e := m.Entities[id]
		if e.Deleted != 0 {
			ev.Changes = append(ev.Changes, wire.Change{Entity: id, Op: "delete", Version: e.Deleted})
		}
		names := make([]string, 0, len(e.Fields))
		for f := range e.Fields {
			names = append(names, f)
		}
		sort.Strings(names)
		for _, f := range names {
			v := e.Fields[f].Value
			ev.Changes = append(ev.Changes, wire.Change{Entity: id, Field: f, Op: "set", Value: &v, Version: e.Fields[f].Version})
			if ev.Versions == nil {
				ev.Versions = make(map[string]map[string]uint64)
			}
			if ev.Versions[id] == nil {
				ev.Versions[id] = make(map[string]uint64)
			}
			ev.Versions[id][f] = e.Fields[f].Version
		}
	}
	if err := p.queue(item{ev: ev, covered: m.Seq, skip: len(ev.Changes) == 0}); err != nil {
		return err
	}
	p.mu.Lock()
	p.received = max(p.received, m.Seq)
	p.mu.Unlock()
	return nil
}

// sendAck acknowledges the events Next returned, if that moved.
func (p *Play) sendAck(conn *websocket.Conn) {
	p.mu.Lock()
	d := p.delivered
	if d <= p.acked {
		p.mu.Unlock()
		return
	}
	p.acked = d
	p.mu.Unlock()
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	_ = p.write(ctx, conn, map[string]any{"type": wire.TypeAck, "seq": d})
}

func (p *Play) write(ctx context.Context, conn *websocket.Conn, v any) error {
	b, err := p.codec.marshal(v)
	if err != nil {
		return err
	}
	return conn.Write(ctx, p.codec.messageType(), b)
}

func (p *Play) read(conn *websocket.Conn, v any) error {
	typ, b, err := conn.Read(p.ctx)
	if err != nil {
		return closeErr(err)
	}
	if err := p.codec.unmarshal(typ, b, v); err != nil {
		return &CloseError{Code: 4400, Reason: "undecodable server message: " + err.Error()}
	}
	return nil
}

// closeErr turns a WebSocket close into a *CloseError; other errors pass.
func closeErr(err error) error {
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		return &CloseError{Code: int(ce.Code), Reason: ce.Reason}
	}
	return err
}
