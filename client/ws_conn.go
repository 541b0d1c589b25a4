package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/coder/websocket"
	"github.com/gsd-dev/gsd/wire"
)

// A Play's connection loop: run connects, and after a drop, a transfer or
// a refused token resumes the session, on the same node or another, with
// capped backoff until the Play ends or the server refuses it for good;
// connect runs one connection (dial, hello or resume, welcome, re-sending
// the actions in flight, then reading each message for ws_messages.go to
// handle, ws_headers.go with PlayOptions.HeadersOnly) and acks what Next
// returned. The encoding of the messages is in
// ws_codec.go.

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
		p.dropPendingData()
		if p.ctx.Err() != nil {
			p.finish(ErrPlayClosed)
			return
		}
		if p.retryAuth(err, mark) {
			backoff = p.c.minBackoff
			continue // at once, with a fresh token
		}
		var ce *CloseError
		if errors.As(err, &ce) && ce.Code == CloseArchiveGap && p.opts.Keyframe && p.startRekey() {
			backoff = p.c.minBackoff
			continue // resume at once, with the world's state instead of the events missed
		}
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
		if errors.As(err, &ce) && (strings.Contains(ce.Reason, CodeNotLeader) || strings.HasPrefix(ce.Reason, CodeWorldMoved) || ce.Code == CloseMoved || ce.Code == int(websocket.StatusGoingAway)) || !errors.As(err, &ce) {
			addr++ // another node may serve us better
		}
		wait, closing := backoff, p.closing
		if p.isClosing() {
			// Close waits for a connection to say bye on: no long waits.
			wait, closing = p.c.minBackoff, nil
		}
		select {
		case <-time.After(wait):
		case <-p.ctx.Done():
		case <-closing:
		}
		backoff = min(backoff*2, p.c.maxBackoff)
		if err == nil {
			backoff = p.c.minBackoff
		}
	}
}

// isClosing reports whether Close was called.
func (p *Play) isClosing() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
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
	if p.opts.Keyframe {
		hello["keyframe"] = true
	}
	if !first {
		hello = map[string]any{"type": wire.TypeResume, "token": token, "player": p.opts.Player,
			"session": p.session, "resume_token": p.resumeToken, "last_seq": p.received}
		if p.ticket != "" {
			hello["ticket"] = p.ticket
		}
		if p.rekey {
			hello["keyframe"] = true
		}
	}
	askKF := first && p.opts.Keyframe || !first && p.rekey
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
	var kf *wire.Keyframe
	if askKF {
		// The keyframe comes right after the welcome.
		kf = new(wire.Keyframe)
		if err := p.read(conn, kf); err != nil {
			return err
		}
		if kf.Type != wire.TypeKeyframe || kf.Seq != w.Seq {
			return &CloseError{Code: 4400, Reason: fmt.Sprintf("expected the keyframe at seq %d, got %q at %d", w.Seq, kf.Type, kf.Seq)}
		}
	}
	p.mu.Lock()
	if first {
		p.session, p.resumeToken, p.received, p.keyframe = w.Session, w.ResumeToken, w.Seq, kf
		p.delivered, p.acked, p.lastEvent = w.Seq, w.Seq, w.Seq
	} else {
		p.resumes++
		p.received = max(p.received, w.Seq)
		if kf != nil {
			// The state replaces the events missed: the stream goes on
			// after the keyframe's seq.
			p.received, p.lastEvent, p.keyframe, p.rekey = w.Seq, w.Seq, kf, false
		}
	}
	p.data, p.incarnation = w.Data, w.Incarnation
	p.udp = udpLane(w.UDP, base)
	p.ticket = "" // used
	p.learn(w.Nodes)
	p.conn = conn
	closing := p.closed
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
	} else if kf != nil {
		ev := stateEvent(p.world, kf, KeyframeStatus)
		if err := p.queue(item{ev: ev, covered: kf.Seq}); err != nil {
			return err
		}
	}
	if closing {
		// Close came while there was no connection (or on a connection
		// that ended before the server forgot the session): say bye here.
		p.sayBye(conn)
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
	// Reads go without a context of their own (one per message cost a
	// timer each); ending the Play closes the connection instead, which
	// ends the read.
	defer context.AfterFunc(p.ctx, func() { _ = conn.CloseNow() })()
	for {
		if err := p.readMessage(conn); err != nil {
			return err
		}
	}
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
	return p.decode(typ, b, v)
}

// decode decodes one server message of WebSocket type typ into v.
func (p *Play) decode(typ websocket.MessageType, b []byte, v any) error {
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

// CloseArchiveGap is the close code of a resume from a position the node
// no longer holds (docs/PROTOCOL.md): a Play opened with
// PlayOptions.Keyframe then resumes with a keyframe.
const CloseArchiveGap = 4410

// startRekey makes the next resume ask for a keyframe; false when the
// last one did already (another archive_gap then goes the usual way).
func (p *Play) startRekey() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.rekey {
		return false
	}
	p.rekey = true
	return true
}
