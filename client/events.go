package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/gsd-dev/gsd/wire"
)

// EventStream reads one world's committed events, in seq order, from one
// NDJSON answer of GET /v1/worlds/{world}/events. It is not safe for
// concurrent use.
type EventStream struct {
	ctx    context.Context
	cancel context.CancelFunc
	body   io.ReadCloser
	rd     *bufio.Reader
	addr   string
	next   uint64 // seq the next event must have; 0 until known
}

// Events opens a world's event stream at seq from (inclusive; 0 means only
// events committed after the call). Opening is retried like a read. The
// stream follows new events until ctx ends, Close is called or the server
// ends it.
func (c *Client) Events(ctx context.Context, world string, from uint64) (*EventStream, error) {
	q := url.Values{}
	q.Set("from", strconv.FormatUint(from, 10))
	if c.linger > 0 {
		q.Set("linger", c.linger.String())
	}
	r := &request{method: http.MethodGet, path: path("worlds", world, "events"), query: q}
	var s *EventStream
	err := c.exec(ctx, r, func(ctx context.Context, base string, _ []byte) error {
		sctx, cancel := context.WithCancel(ctx)
		var timer *time.Timer
		if c.attemptTimeout > 0 {
			timer = time.AfterFunc(c.attemptTimeout, cancel)
		}
		req, err := c.newHTTPRequest(sctx, base, r, nil)
		if err != nil {
			cancel()
			return err
		}
		req.Header.Set("Accept", "application/x-ndjson")
		resp, err := c.send(req, base)
		if timer != nil && !timer.Stop() && err == nil {
			// The header timeout fired just as the answer came: the
			// stream's context is already cancelled.
			resp.Body.Close()
			err = &connError{addr: base, sent: true, err: context.DeadlineExceeded}
		}
		if err != nil {
			cancel()
			return err
		}
		s = &EventStream{ctx: sctx, cancel: cancel, body: resp.Body, rd: bufio.NewReaderSize(resp.Body, 64<<10), addr: base, next: from}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// streamLine is one NDJSON line: an event, or an error that ends the stream.
type streamLine struct {
	wire.Event
	wire.ErrorBody
}

// Next returns the next event, waiting for it. It returns io.EOF when the
// server ended the stream cleanly, an *Error when the server ended it with
// an error line (such as archive_gap), ErrGap if a seq was skipped, and a
// retryable connection error when the connection broke.
func (s *EventStream) Next() (wire.Event, error) {
	for {
		line, err := s.rd.ReadBytes('\n')
		if err != nil {
			if cerr := s.ctx.Err(); cerr != nil {
				return wire.Event{}, cerr
			}
			if errors.Is(err, io.EOF) && len(bytes.TrimSpace(line)) == 0 {
				return wire.Event{}, io.EOF
			}
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return wire.Event{}, &connError{addr: s.addr, sent: true, err: err}
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue // keep-alive
		}
		var l streamLine
		if err := json.Unmarshal(line, &l); err != nil {
			return wire.Event{}, fmt.Errorf("gsd/client: decode event: %w", err)
		}
		if l.Code != "" {
			return wire.Event{}, &Error{Status: codeStatus[l.Code], Code: l.Code, Message: l.Error}
		}
		if l.Seq == 0 {
			continue // not an event (keep-alive object)
		}
		switch {
		case s.next != 0 && l.Seq < s.next:
			continue // already delivered
		case s.next != 0 && l.Seq > s.next:
			return wire.Event{}, fmt.Errorf("%w: want seq %d, got %d", ErrGap, s.next, l.Seq)
		}
		s.next = l.Seq + 1
		return l.Event, nil
	}
}

// Position returns the seq the next event will have (0 before the first
// event of a stream opened at 0).
func (s *EventStream) Position() uint64 { return s.next }

// Close ends the stream.
func (s *EventStream) Close() error {
	s.cancel()
	return s.body.Close()
}

// Follow calls fn with every event of world from seq from (inclusive) until
// ctx ends or fn returns an error. When a stream breaks (a node dies, the
// server closes it) it reconnects, to any address, at the last seq + 1, so
// fn sees each event once and in order. Errors that reconnecting cannot fix
// (archive_gap, unknown_world, a gap) end it. With from 0 it starts after
// the seq the answering node holds now (a lagging node may hand over a few
// events committed just before the call; none after it is ever missed, even
// if the stream breaks before the first event).
func (c *Client) Follow(ctx context.Context, world string, from uint64, fn func(wire.Event) error) error {
	next := from
	if next == 0 {
		h, err := c.Hash(ctx, world, 0)
		if err != nil {
			return err
		}
		next = h.Seq + 1
	}
	backoff := c.minBackoff
	for {
		s, err := c.Events(ctx, world, next)
		if err != nil {
			return err
		}
		for {
			ev, err := s.Next()
			if err != nil {
				s.Close()
				if cerr := ctx.Err(); cerr != nil {
					return cerr
				}
				if !errors.Is(err, io.EOF) && !IsRetryable(err) {
					return err
				}
				break
			}
			backoff = c.minBackoff
			if err := fn(ev); err != nil {
				s.Close()
				return err
			}
			next = ev.Seq + 1
		}
		if err := sleep(ctx, jitter(backoff)); err != nil {
			return err
		}
		backoff = min(backoff*2, c.maxBackoff)
	}
}
