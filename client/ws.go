package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/gsd-dev/gsd/wire"
)

// The play connection's API (docs/PROTOCOL.md): PlayOptions, CloseError,
// the Play a player holds, and its calls: Client.Play opens the session
// and waits for the welcome, Next returns the world's events (and deltas,
// DeltaStatus) in seq order, Act and Ping send and wait for their answers,
// Close and Drop end it. Behind a Play runs one goroutine that connects,
// resumes and reads (ws_conn.go) and hands what the server sends to
// ws_messages.go, which queues it for Next.

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
	// HeadersOnly makes Next return events without their Changes and
	// Versions, and deltas (DeltaStatus) without their changes: the Play
	// then decodes only what it orders and what a player measures events
	// by (seq, time, player, client seq, priority, status), a fraction of
	// the cost of decoding them whole (ws_headers.go). For players that
	// count or time events rather than apply them, as the load generator
	// does; gaps and duplicates are found by seq as without it. Act's
	// events are whole either way.
	HeadersOnly bool
	// Keyframe asks the server, when the Play opens, for the world's state
	// the player may see (Play.Keyframe): Next then returns the events
	// after it. Resumes go on from the events received, without one,
	// unless the server no longer holds them (4410 archive_gap, as at a
	// world's new home after a move): then the Play resumes with a
	// keyframe, which Next returns as a KeyframeStatus event. Needs a
	// server that knows the keyframe key (docs/PROTOCOL.md).
	Keyframe bool
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

	closeOnce sync.Once
	closing   chan struct{} // closed by Close: say bye, on a resumed connection if need be

	mu          sync.Mutex
	conn        *websocket.Conn
	session     string
	resumeToken string
	received    uint64 // world seq the received frames cover (queued for Next)
	lastEvent   uint64 // seq of the last individual event received
	delivered   uint64 // world seq covered by what Next returned
	acked       uint64 // last ack sent on the current connection
	pending     map[uint64]*pendingAct
	dataSeq     uint64                          // the last data message's seq (playdata.go)
	pendingData map[uint64]chan wire.DataAnswer // data messages awaiting their answer, by seq
	resumes     int
	overlaps    int64  // events received again after a resume, dropped
	tok         string // the TokenSource's latest token (token.go)
	authFails   int    // token refusals in a row (token.go; run's only)
	err         error  // why the Play ended
	data        map[string]wire.Value
	incarnation uint64         // the world's, as of the last welcome
	keyframe    *wire.Keyframe // the latest (PlayOptions.Keyframe): the first welcome's, or a resume's
	rekey       bool           // the next resume asks for a keyframe (after archive_gap)
	udp         *UDPInfo       // the current connection's UDP lane key (udp.go)
	closed      bool           // Close was called (mirrors closing, under mu)
	// A transfer (transfer.go): where to resume next, with which ticket,
	// and the other nodes the welcomes named.
	moveTo  string
	ticket  string
	learned []string
	// The reader's events of one JSON frame with HeadersOnly (ws_scan.go),
	// reused: Next gets copies.
	scratch []wire.Event
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

// EnterStatus is the Status of the events Next returns for an "enter"
// message (a world with an interest grid): entities that came into the
// player's area, each field whole with its version (op "set"; a set
// field's elements in Set). Seq is the world seq the server read them at,
// which may be ahead of the events received: apply a field only when its
// version is newer than the one you hold. It moves no acknowledged
// position. A HeadersOnly Play drops them.
const EnterStatus = "enter"

// AreaStatus is the Status of the events Next returns for an "enter"
// message marked whole: everything the player is interested in now (its
// area, the entities without a position, its team's), each entity whole
// as for EnterStatus. Drop the entities you hold that are not in it. It
// comes when the connection (re)attaches to the server's fan-out: after
// hello and every resume, and when the player changes team.
const AreaStatus = "area"

// LeaveStatus is the Status of the events Next returns for a "leave"
// message (a world with an interest grid): one change per entity that is
// no longer of interest to the player (op "leave", no value): it left the
// player's area or team. Drop it; if it comes back it comes whole, in an
// EnterStatus event. It moves no acknowledged position. A HeadersOnly
// Play drops them.
const LeaveStatus = "leave"

// KeyframeStatus is the Status of the event Next returns when a Play
// opened with PlayOptions.Keyframe resumed with a keyframe because the
// server no longer held the events it missed (4410 archive_gap, e.g. at a
// world's new home after a move): the whole state the player may see at
// Seq, each field a change as for EnterStatus. Replace the state you hold
// with it; the events that follow come after Seq.
const KeyframeStatus = "keyframe"

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
	p := &Play{c: c, world: world, opts: opts, codec: codec, done: make(chan struct{}), ready: make(chan struct{}), closing: make(chan struct{}),
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

// Incarnation returns the world's incarnation as of the last welcome
// (wire.World.Incarnation): a resume that names another one means the
// world was deleted and created again (0: a server or world from before
// incarnations).
func (p *Play) Incarnation() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.incarnation
}

// Overlaps returns how many events the server sent again that this Play
// had already received (a resume's overlap) and dropped before Next: the
// duplicates a client without this check would have seen.
func (p *Play) Overlaps() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.overlaps
}

// Keyframe returns the world's state the player could see when the Play
// opened, at the seq before the first event Next returns, or, after a
// resume that needed one, that resume's (nil without
// PlayOptions.Keyframe). Apply events and deltas over it by version.
// Its Checkpoint, when the node signs the world's audit log and the
// player may see every field, is the newest signed audit checkpoint at or
// before its seq: open it with anticheat/audit.OpenCheckpoint and check
// later events (Client.AuditProof) and checkpoints against it.
func (p *Play) Keyframe() *wire.Keyframe {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.keyframe
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

// closeWait bounds how long Close waits for the server to forget the
// session after bye.
const closeWait = 5 * time.Second

// Close ends the session for good (the server forgets it) and the
// connection. It says bye on the current connection; when there is none
// (the Play is resuming after a drop) or that one ends before the server
// closed it, the Play resumes and says bye on the new connection, so a
// player who quits during a reconnect leaves no session behind. It gives
// up after closeWait.
func (p *Play) Close() error {
	p.finish(ErrPlayClosed)
	p.mu.Lock()
	p.closed = true
	conn := p.conn
	p.mu.Unlock()
	p.closeOnce.Do(func() { close(p.closing) })
	if conn != nil {
		p.sayBye(conn)
	}
	t := time.NewTimer(closeWait)
	// The server closes after forgetting the session, which ends run.
	select {
	case <-p.done:
	case <-t.C:
	}
	t.Stop()
	p.cancel()
	<-p.done
	return nil
}

// sayBye acknowledges what Next returned and says bye on conn. Close says
// it on the connection it finds, connect on one welcomed after Close came
// (both decide under mu, so each connection gets one bye).
func (p *Play) sayBye(conn *websocket.Conn) {
	p.sendAck(conn)
	ctx, cancel := context.WithTimeout(p.ctx, closeWait)
	defer cancel()
	_ = p.write(ctx, conn, map[string]string{"type": wire.TypeBye})
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
