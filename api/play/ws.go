package play

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/internal/wscork"
	"github.com/gsd-dev/gsd/wire"
	"github.com/prometheus/client_golang/prometheus"
)

// The WebSocket play endpoint (docs/PROTOCOL.md): its config and metrics,
// the upgrade (play), and one connection's goroutines after the handshake:
// the read loop and its messages (actions, acks, pings, bye), the writer,
// which writes control messages first and then the frames the connection's
// outbox (outbox.go) holds from the world's hub (hub.go); the node's
// watcher (ws_watch.go) checks the session, closes idle connections and
// pings; closeStatus maps why a connection ended to its close code. The handshake and the session's life on this
// node are in ws_session.go, the codecs in ws_codec.go.

// PlaySubprotocol is the WebSocket subprotocol of the JSON play protocol
// (docs/PROTOCOL.md); MsgpackSubprotocol (ws_codec.go) is its binary twin.
const PlaySubprotocol = wire.SubprotocolJSON

// Config configures the WebSocket play endpoint.
type Config struct {
	// MaxMessageBytes bounds one inbound message; a bigger one closes the
	// connection with 1009.
	MaxMessageBytes int64
	// QueueSize bounds the outbound messages waiting per connection.
	QueueSize int
	// SlowTimeout is how long a full outbound queue may stay full before
	// the connection is closed as a slow consumer.
	SlowTimeout time.Duration
	// WriteTimeout bounds writing one message to the socket.
	WriteTimeout time.Duration
	// HelloTimeout bounds the wait for the first message (hello or resume).
	HelloTimeout time.Duration
	// AckInterval is how often the node replicates its play connections'
	// latest acks, all in one command (acks.go).
	AckInterval time.Duration
	// SessionKeepalive, when > 0, makes the acker replicate a connection's
	// ack again when it has not replicated one for this long, so that its
	// session's seen time stays fresh while the client is connected but
	// has nothing new to ack (a quiet world) and session expiry (gsd
	// --session-expiry) does not close it. 0: only acks that moved.
	SessionKeepalive time.Duration
	// PingInterval is how often the server pings (application level).
	PingInterval time.Duration
	// IdleTimeout closes a connection that sent nothing for this long.
	IdleTimeout time.Duration
	// MaxInflight bounds one connection's actions awaiting commit.
	MaxInflight int
	// OriginPatterns lists the browser origins allowed besides the host's
	// own (see websocket.AcceptOptions).
	OriginPatterns []string
	// TickInterval is how often each connection's coalesced bulk changes
	// are flushed (a "delta" frame); critical events go at once.
	TickInterval time.Duration
	// CoalesceBulk turns on coalescing: applied bulk events reach clients
	// as per-tick deltas (latest value per entity and field) rather than
	// one by one.
	CoalesceBulk bool
	// Interest turns on area-of-interest filtering (off by default).
	Interest InterestConfig
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		MaxMessageBytes: 64 << 10,
		QueueSize:       256,
		SlowTimeout:     2 * time.Second,
		WriteTimeout:    10 * time.Second,
		HelloTimeout:    10 * time.Second,
		AckInterval:     200 * time.Millisecond,
		PingInterval:    15 * time.Second,
		IdleTimeout:     60 * time.Second,
		MaxInflight:     64,
		TickInterval:    50 * time.Millisecond,
		CoalesceBulk:    true,
	}
}

// Validate checks the config.
func (c Config) Validate() error {
	if c.MaxMessageBytes < 1 || c.QueueSize < 1 || c.MaxInflight < 1 {
		return errors.New("MaxMessageBytes, QueueSize and MaxInflight must be > 0")
	}
	if c.SlowTimeout <= 0 || c.WriteTimeout <= 0 || c.HelloTimeout <= 0 || c.AckInterval <= 0 || c.PingInterval <= 0 || c.TickInterval <= 0 {
		return errors.New("play timeouts and intervals must be > 0")
	}
	if err := c.Interest.Validate(); err != nil {
		return err
	}
	if c.SessionKeepalive < 0 {
		return errors.New("SessionKeepalive must not be negative")
	}
	if c.IdleTimeout <= c.PingInterval {
		return errors.New("IdleTimeout must exceed PingInterval")
	}
	return nil
}

// playMetrics count play connections and why they ended.
type playMetrics struct {
	open     prometheus.Gauge
	closes   *prometheus.CounterVec
	detaches prometheus.Counter // connections the hub left to catch up alone
	sent     prometheus.Counter // events written in events frames (outbox.sent)
	// The server's parts of an event's way (stages.go).
	stageAct, stageFanout, stageWrite prometheus.Observer
}

func newPlayMetrics(reg prometheus.Registerer) (*playMetrics, error) {
	m := &playMetrics{
		open: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gsd_play_connections", Help: "Open WebSocket play connections.",
		}),
		closes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gsd_play_closes_total", Help: "Play connections ended, by close code.",
		}, []string{"code"}),
		detaches: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gsd_play_detaches_total", Help: "Play connections whose full queue made the world's hub leave them to catch up alone.",
		}),
		sent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gsd_play_events_sent_total", Help: "Events written to play connections in events frames (coalesced bulk deltas not counted); a load generator compares it with what its players received.",
		}),
	}
	stages := newStageHistogram()
	m.stageAct, m.stageFanout, m.stageWrite = stages.WithLabelValues(stageAct), stages.WithLabelValues(stageFanout), stages.WithLabelValues(stageWrite)
	for _, c := range []prometheus.Collector{m.open, m.closes, m.detaches, m.sent, stages} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("api play metrics: %w", err)
		}
	}
	return m, nil
}

// errBye ends a connection normally, at the client's request.
var errBye = errors.New("gsd/api: bye")

// play handles GET /v1/worlds/{world}/play: the WebSocket play connection
// (docs/PROTOCOL.md).
func (s *Service) play(w http.ResponseWriter, r *http.Request) {
	if !s.OpenStream() {
		s.WriteError(w, edge.ErrUnavailable, false)
		return
	}
	defer s.StreamDone()
	if s.drain.on.Load() {
		s.WriteError(w, s.drainingError(), false)
		return
	}
	world := r.PathValue("world")
	if err := edge.CheckName("world", world); err != nil {
		s.WriteError(w, err, false)
		return
	}
	// A bad Authorization header is refused before the upgrade; the token
	// may also come in the hello (browsers cannot set headers).
	var headerPlayer string
	if s.Auth() != nil && edge.Bearer(r) != "" {
		p, err := s.Auth().Verify(edge.Bearer(r))
		if err != nil {
			s.WriteError(w, err, false)
			return
		}
		headerPlayer = p
	}
	h := &wscork.Hijack{ResponseWriter: w, Timeout: s.cfg.WriteTimeout}
	ws, err := websocket.Accept(h, r, &websocket.AcceptOptions{
		Subprotocols:   playSubprotocols(r),
		OriginPatterns: s.cfg.OriginPatterns,
	})
	if err != nil {
		return // Accept has answered
	}
	ws.SetReadLimit(s.cfg.MaxMessageBytes)
	s.playMetrics.open.Inc()
	defer s.playMetrics.open.Dec()
	codec, known := codecOf(ws.Subprotocol())
	c := &playConn{s: s, cfg: s.cfg, ws: ws, world: world, header: edge.Bearer(r), codec: codec, known: known,
		out: make(chan []byte, s.cfg.QueueSize), final: make(chan []byte, 1), ready: make(chan struct{}), sem: make(chan struct{}, s.cfg.MaxInflight),
		ob: newOutbox(s.cfg.QueueSize, codec), detached: make(chan struct{}, 1), cork: h.Conn}
	c.headerPlayer = headerPlayer
	c.ob.sent = s.playMetrics.sent
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.run()
}

// playConn is one play connection. Its handler goroutine owns it: it reads,
// and it starts and waits for the writer, the event pusher and the actions
// in flight.
type playConn struct {
	s      *Service
	cfg    Config
	ws     *websocket.Conn
	cork   *wscork.Conn // ws's socket (cork.go)
	world  string
	header string    // edge.Bearer token of the upgrade request, if any
	codec  playCodec // by the negotiated subprotocol (ws_codec.go)
	known  bool      // a subprotocol was negotiated

	// headerPlayer is the header token's player, verified at the upgrade:
	// a hello or resume token must name the same one.
	headerPlayer string

	player  string
	role    string // the token's role (auth on), carried by every action
	session string
	token   string // the player's JWT (auth on), sent along when forwarding
	epoch   uint64 // the session's epoch this connection holds
	// current: this node's applied state has shown the session at this
	// connection's epoch, so its disappearance means it was closed or
	// replaced (only the watcher reads and writes it after the handshake).
	current bool
	expiry  *time.Timer // fires when the token expires

	ctx     context.Context // cancelled when the connection ends
	cancel  context.CancelFunc
	errOnce sync.Once
	err     error // why it ended; set once, before cancel

	out      chan []byte   // control messages: welcome, results, pings
	ob       *outbox       // events: critical frames and coalesced deltas (outbox.go)
	taken    [][]byte      // the writer's last take, reused (writeQueued)
	detached chan struct{} // the hub detached this connection (queue full)
	area     enterState    // its area of interest as last sent (enter.go; the hub's mu)
	final    chan []byte   // the transfer message, written last (transfer.go)
	ready    chan struct{} // closed once the handshake succeeded
	sem      chan struct{}
	actMu    sync.Mutex     // guards moving and acts.Add
	moving   bool           // a drain is moving the connection: no new actions
	acts     sync.WaitGroup // actions in flight
	wg       sync.WaitGroup
	sent     atomic.Uint64 // seq of the last event queued to the client
	acked    atomic.Uint64 // the client's latest ack (<= sent)
	flushed  atomic.Uint64 // the last ack replicated (acks.go)
	kept     atomic.Int64  // unix ns its ack was last replicated, or first seen by the acker (acks.go)
	lastRead atomic.Int64  // unix ns of the last message read
	rtt      atomic.Int64  // last measured round trip, ns
	bye      atomic.Bool   // the client said bye: its session closes next
	wakes    atomic.Uint64 // the writer's wakes (the writers' ruler counts them)
	// soloRules: the world's rules c joined its hub under, moved by the
	// updates it reads alone (views.go soloCut; the pusher's only).
	soloRules edge.RulesRef

	// The watcher's (ws_watch.go): when the next ping is due, and a ping
	// waiting for room in out since pingSince.
	nextPing, pingSince time.Time
	ping                []byte
}

// fail ends the connection with err (the first reason wins).
func (c *playConn) fail(err error) {
	c.errOnce.Do(func() {
		c.err = err
		c.cancel()
	})
}

func (c *playConn) run() {
	defer c.ws.CloseNow()
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		<-c.ctx.Done()
		code, reason := closeStatus(c.err)
		c.s.playMetrics.closes.WithLabelValues(fmt.Sprint(int(code))).Inc()
		_ = c.ws.Close(code, reason)
	}()
	stop := context.AfterFunc(c.s.Closing(), func() { c.fail(edge.ErrUnavailable) })
	defer func() {
		stop()
		c.fail(errBye) // a no-op unless the read loop ended first
		<-closed
		if c.expiry != nil {
			c.expiry.Stop()
		}
		c.wg.Wait()
		c.s.udpClose(c)
		c.s.unregisterPlay(c)
		switch {
		case errors.Is(c.err, fsm.ErrSessionKicked):
			c.closeSession("kicked")
		case !errors.Is(c.err, edge.ErrSessionReplaced) && !errors.Is(c.err, errBye):
			c.flushAck(true)
		}
	}()
	if !c.known {
		c.fail(fmt.Errorf("%w: the client must offer the %s or %s subprotocol", fsm.ErrMalformed, PlaySubprotocol, MsgpackSubprotocol))
		return
	}
	c.lastRead.Store(time.Now().UnixNano())
	hello := time.AfterFunc(c.cfg.HelloTimeout, func() {
		// A timeout, not bad input: an overloaded server or network can
		// delay a resume's first message, and the client should resume.
		c.fail(fmt.Errorf("%w: no hello within %s", edge.ErrIdle, c.cfg.HelloTimeout))
	})
	msg, ok := c.read()
	hello.Stop()
	if !ok {
		return
	}
	sub, err := c.handshake(msg)
	if err != nil {
		c.fail(err)
		return
	}
	close(c.ready)
	c.wg.Add(2)
	go c.writer()
	go c.pusher(sub)
	for {
		msg, ok := c.read()
		if !ok {
			return
		}
		c.handle(msg)
		if c.ctx.Err() != nil {
			return
		}
	}
}

// read returns the next message; false when the connection ended.
func (c *playConn) read() (wire.ClientMsg, bool) {
	// Read is not given c.ctx: cancelling it would drop the connection
	// without a close frame. Close (run's closer) unblocks it instead.
	typ, data, err := c.ws.Read(context.Background())
	if err != nil {
		if errors.Is(err, websocket.ErrMessageTooBig) {
			err = fmt.Errorf("%w: message over %d bytes", edge.ErrTooLarge, c.cfg.MaxMessageBytes)
		}
		c.fail(err)
		return wire.ClientMsg{}, false
	}
	c.lastRead.Store(time.Now().UnixNano())
	var msg wire.ClientMsg
	if err := c.codec.decode(typ, data, &msg); err != nil {
		c.fail(err)
		return msg, false
	}
	return msg, true
}

// handle acts on one message after the handshake.
func (c *playConn) handle(msg wire.ClientMsg) {
	switch msg.Type {
	case wire.TypeAction:
		select {
		case c.sem <- struct{}{}:
		case <-c.ctx.Done():
			return
		}
		if !c.admitAct() {
			<-c.sem
			return
		}
		read := time.Now()
		c.wg.Go(func() {
			defer c.acts.Done()
			defer func() { <-c.sem }()
			c.act(msg.Action, read)
		})
	case wire.TypeData:
		// As an action: one of the connection's writes in flight, so a
		// drain waits for its answer before the transfer.
		select {
		case c.sem <- struct{}{}:
		case <-c.ctx.Done():
			return
		}
		if !c.admitAct() {
			<-c.sem
			return
		}
		c.wg.Go(func() {
			defer c.acts.Done()
			defer func() { <-c.sem }()
			c.writeData(msg)
		})
	case wire.TypeAck:
		// An ack beyond what was sent is clamped: the client cannot have it.
		seq := min(msg.Seq, c.sent.Load())
		for {
			cur := c.acked.Load()
			if seq <= cur || c.acked.CompareAndSwap(cur, seq) {
				break
			}
		}
	case wire.TypePing:
		c.send(wire.Ping{Type: wire.TypePong, T: msg.T, ServerTime: time.Now().UnixNano()})
	case wire.TypePong:
		if msg.T > 0 {
			c.rtt.Store(time.Now().UnixNano() - msg.T)
		}
	case wire.TypeBye:
		c.flushAck(false)
		// The session's disappearance is ours: watch must not take it for
		// a replacement (4409) before fail(errBye) below.
		c.bye.Store(true)
		c.closeSession("bye")
		c.fail(errBye)
	default:
		c.fail(fmt.Errorf("%w: unexpected message type %q", fsm.ErrMalformed, msg.Type))
	}
}

// act runs one action, read from the socket at read, and queues its
// result or error.
func (c *playConn) act(raw json.RawMessage, read time.Time) {
	var key struct {
		Seq uint64 `json:"seq"`
	}
	_ = json.Unmarshal(raw, &key) // best effort: the error answer names the seq
	res := wire.Result{Type: wire.TypeResult, Seq: key.Seq}
	a, err := edge.DecodeAction(raw, c.world, edge.Identity{Player: c.player, Role: c.role})
	if err == nil {
		err = c.s.CheckBan(c.world, c.player)
	}
	if err == nil {
		err = c.s.Admit(nil, c.player, "play") // refused with an error message; the connection stays
	}
	if err == nil {
		ctx, cancel := context.WithTimeout(c.ctx, c.s.Config().RequestTimeout)
		var ev wire.Event
		ev, err = c.actOnLeader(ctx, a, raw) // follow.go
		cancel()
		if err == nil {
			ev, err = c.s.answer(c, ev) // views.go
		}
		if err == nil {
			res.Event = &ev
		}
	}
	if err != nil {
		var body edge.ErrorBody
		res.Type = wire.TypeError
		res.Status, body = c.s.ErrorFor(err, true)
		res.Code, res.Error = body.Code, body.Error
	}
	c.s.playMetrics.stageAct.Observe(time.Since(read).Seconds())
	c.send(res)
}

// send queues one message, waiting at most SlowTimeout for room; a client
// that leaves its queue full that long is cut off.
func (c *playConn) send(v any) bool {
	b, err := c.codec.marshal(v)
	if err != nil {
		c.fail(fmt.Errorf("%w: encode %T: %v", edge.ErrInternal, v, err))
		return false
	}
	select {
	case c.out <- b:
		c.wakeWriter()
		return true
	default:
	}
	t := time.NewTimer(c.cfg.SlowTimeout)
	defer t.Stop()
	select {
	case c.out <- b:
		c.wakeWriter()
		return true
	case <-t.C:
		c.fail(fmt.Errorf("%w: outbound queue of %d messages full for %s", edge.ErrSlowConsumer, c.cfg.QueueSize, c.cfg.SlowTimeout))
	case <-c.ctx.Done():
	}
	return false
}

// wakeWriter tells the writer it has work: a control message in out,
// the transfer in final, or the connection's end. Its outbox's frames
// wake it on the same channel, so the writer waits on one channel, not a
// select over four (a select costs about as much as the rest of a wake).
func (c *playConn) wakeWriter() { wake(c.ob.signal) }

// writer writes queued messages: control messages first (so the welcome
// precedes every event), then the outbox's events frames and, when a tick
// asked, its delta. Everything it finds at one wake goes out corked, in
// one write to the socket (cork.go) bounded by WriteTimeout. The transfer
// message (final) is written last, without the outbox's frames.
func (c *playConn) writer() {
	defer c.wg.Done()
	stop := context.AfterFunc(c.ctx, c.wakeWriter)
	defer stop()
	for {
		<-c.ob.signal
		if c.ctx.Err() != nil {
			return
		}
		select {
		case b := <-c.final:
			c.writeFinal(b)
			return
		default:
		}
		c.wakes.Add(1)
		if !c.writeBatch() {
			return
		}
	}
}

// writeBatch writes the queued control messages, then the outbox's
// frames, corked into one write.
func (c *playConn) writeBatch() bool {
	c.cork.Cork()
	c.ob.takenAt = c.ob.takenAt[:0]
	ok := c.writeQueued()
	if err := c.cork.Uncork(); err != nil && ok {
		c.fail(fmt.Errorf("%w: write: %v", edge.ErrSlowConsumer, err))
		return false
	}
	if ok {
		now := time.Now().UnixNano()
		for _, at := range c.ob.takenAt {
			c.s.playMetrics.stageWrite.Observe(float64(now-at) / 1e9)
		}
	}
	return ok
}

func (c *playConn) writeQueued() bool {
	for n := len(c.out); n > 0; n-- {
		if !c.writeCorked(<-c.out) {
			return false
		}
	}
	out, err := c.ob.takeAppend(c.taken)
	c.taken = out
	if err != nil {
		c.fail(err)
		return false
	}
	c.sent.Store(c.ob.coveredSeq()) // before the client can ack them
	defer clear(out)                // the frames are written: let them go
	for _, b := range out {
		if !c.writeCorked(b) {
			return false
		}
	}
	return true
}

// closeStatus maps why a connection ended to its close code and reason:
// 4000 + the HTTP status Classify gives (4401 unauthorized, 4429
// slow_consumer, 4503 not_leader, ...), 1000 for bye, 1001 when the server
// closes, 1009 for an oversized message, 1011 for internal errors.
func closeStatus(err error) (websocket.StatusCode, string) {
	var code websocket.StatusCode
	var reason string
	switch {
	case err == nil, errors.Is(err, errBye):
		return websocket.StatusNormalClosure, "bye"
	case errors.Is(err, edge.ErrUnavailable):
		code, reason = websocket.StatusGoingAway, edge.CodeUnavailable
	case errors.Is(err, edge.ErrTooLarge):
		code, reason = websocket.StatusMessageTooBig, edge.CodeTooLarge
	default:
		status, c := edge.Classify(err, true)
		code, reason = websocket.StatusCode(4000+status), c
		if status == http.StatusInternalServerError {
			code = websocket.StatusInternalError
		}
	}
	reason += ": " + err.Error()
	if len(reason) > 123 { // a close frame's reason is at most 123 bytes
		reason = strings.ToValidUTF8(reason[:123], "")
	}
	return code, reason
}
