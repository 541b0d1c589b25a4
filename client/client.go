package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gsd-dev/gsd/wire"
)

// maxBody bounds a unary answer read into memory.
const maxBody = 64 << 20

// Client talks to the nodes of one gsd shard over HTTP. It is safe for
// concurrent use.
type Client struct {
	addrs          []string // base URLs, "http://host:port"
	hc             *http.Client
	header         http.Header
	maxAttempts    int
	minBackoff     time.Duration
	maxBackoff     time.Duration
	attemptTimeout time.Duration
	linger         time.Duration // event streams' linger (Events, Follow)
	tlsCfg         *tls.Config   // WithTLSConfig
	pref           atomic.Int64  // index of the address that last answered
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sets the HTTP client. Its redirect policy is replaced: the
// client never follows redirects.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) { c.hc = hc }
}

// WithTLSConfig makes the client speak TLS with cfg (for example RootCAs
// holding a private CA, or a client certificate): addresses without a
// scheme become https:// (and play connections wss://). It configures the
// client's default transport; with WithHTTPClient, set the TLS of that
// client's transport instead.
func WithTLSConfig(cfg *tls.Config) Option {
	return func(c *Client) { c.tlsCfg = cfg }
}

// WithEventLinger asks event streams (Events, Follow) to gather events for
// up to d between writes: fewer, larger writes for a delay of up to d, the
// trade a spectator makes. 0, the default, has every batch sent at once.
func WithEventLinger(d time.Duration) Option {
	return func(c *Client) { c.linger = max(d, 0) }
}

// WithMaxAttempts caps the attempts of one call (each address tried counts).
// 0, the default, retries until the call's context ends: give calls a
// context with a deadline.
func WithMaxAttempts(n int) Option {
	return func(c *Client) { c.maxAttempts = max(n, 0) }
}

// WithBackoff sets the first and the largest pause between rounds of
// retries (defaults 25ms and 1s).
func WithBackoff(first, largest time.Duration) Option {
	return func(c *Client) {
		c.minBackoff = max(first, time.Millisecond)
		c.maxBackoff = max(largest, c.minBackoff)
	}
}

// WithAttemptTimeout bounds one unary request, so a hung node (stopped, or
// partitioned without resets) is abandoned for the next address. Event
// streams use it only until the answer's headers arrive. Default 15s, above
// the server's own proposal timeout; 0 disables it.
func WithAttemptTimeout(d time.Duration) Option {
	return func(c *Client) { c.attemptTimeout = max(d, 0) }
}

// WithHeader adds a header to every request (for example Authorization).
func WithHeader(key, value string) Option {
	return func(c *Client) { c.header.Add(key, value) }
}

// New returns a client for the nodes at addrs ("host:port" or URLs). It does
// not connect until the first call.
func New(addrs []string, opts ...Option) *Client {
	c := &Client{
		header:         make(http.Header),
		minBackoff:     25 * time.Millisecond,
		maxBackoff:     time.Second,
		attemptTimeout: 15 * time.Second,
	}
	for _, o := range opts {
		o(c)
	}
	scheme := "http://"
	if c.tlsCfg != nil {
		scheme = "https://"
	}
	for _, a := range addrs {
		if a = strings.TrimSpace(a); a == "" {
			continue
		}
		if !strings.Contains(a, "://") {
			a = scheme + a
		}
		c.addrs = append(c.addrs, strings.TrimRight(a, "/"))
	}
	t := defaultTransport()
	if c.tlsCfg != nil {
		t.TLSClientConfig = c.tlsCfg.Clone()
	}
	hc := &http.Client{Transport: t}
	if c.hc != nil {
		cp := *c.hc
		hc = &cp
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c.hc = hc
	return c
}

// defaultTransport keeps enough idle connections per node for many
// concurrent players (the standard transport keeps 2).
func defaultTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 256
	t.MaxIdleConnsPerHost = 64
	return t
}

// Close releases the client's idle connections. The client stays usable.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

// Addrs returns the base URLs the client uses.
func (c *Client) Addrs() []string { return append([]string(nil), c.addrs...) }

// retryMode says which failures a call may repeat.
type retryMode int

const (
	// retrySafe repeats on any retryable failure: reads, and writes that are
	// idempotent (actions by seq, joins, snapshots).
	retrySafe retryMode = iota
	// retryUnapplied repeats only when the server did nothing: dial errors,
	// not_leader, overloaded. For writes that are not idempotent.
	retryUnapplied
)

// request is one API call.
type request struct {
	method string
	path   string // already escaped
	query  url.Values
	body   any
	mode   retryMode
	write  bool // may change state: a failure may leave the outcome unknown
}

func (r *request) canRetry(err error) bool {
	if !IsRetryable(err) {
		return false
	}
	switch r.mode {
	case retryUnapplied:
		return !IsOutcomeUnknown(err)
	case retrySafe:
		return true
	}
	return false
}

func failover(err error) bool {
	var e *Error
	if errors.As(err, &e) {
		return e.failover()
	}
	return true // connection errors
}

// exec runs r against the addresses until it succeeds, fails for good, the
// attempts run out or ctx ends. once performs one attempt on one address.
func (c *Client) exec(ctx context.Context, r *request, once func(ctx context.Context, base string, body []byte) error) error {
	if len(c.addrs) == 0 {
		return errors.New("gsd/client: no addresses")
	}
	var body []byte
	if r.body != nil {
		var err error
		if body, err = json.Marshal(r.body); err != nil {
			return fmt.Errorf("gsd/client: encode request: %w", err)
		}
	}
	n := len(c.addrs)
	idx := int(c.pref.Load())
	backoff := c.minBackoff
	var lastErr error
	maybe := false // some attempt may have been applied
	round := 0     // addresses tried since the last pause
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return giveUp(err, lastErr, maybe)
		}
		i := idx % n
		err := once(ctx, c.addrs[i], body)
		if err == nil {
			c.pref.Store(int64(i))
			return nil
		}
		if ctx.Err() != nil {
			return giveUp(ctx.Err(), err, maybe || (r.write && IsOutcomeUnknown(err)))
		}
		if !r.canRetry(err) {
			// Only a success settles earlier unknown attempts: a refusal
			// of this attempt (seq_expired, an expired token, a 500)
			// says nothing about whether an earlier one committed.
			return giveUp(nil, err, maybe)
		}
		lastErr = err
		maybe = maybe || (r.write && IsOutcomeUnknown(err))
		if c.maxAttempts > 0 && attempt >= c.maxAttempts {
			return giveUp(nil, err, maybe)
		}
		idx++
		round++
		if !failover(err) || round >= n {
			round = 0
			if err := sleep(ctx, jitter(backoff)); err != nil {
				return giveUp(err, lastErr, maybe)
			}
			backoff = min(backoff*2, c.maxBackoff)
		}
	}
}

func giveUp(ctxErr, last error, maybe bool) error {
	err := last
	switch {
	case ctxErr != nil && last != nil:
		err = fmt.Errorf("%w (last attempt: %w)", ctxErr, last)
	case ctxErr != nil:
		err = ctxErr
	}
	if maybe && !errors.Is(err, ErrOutcomeUnknown) {
		err = fmt.Errorf("%w: %w", ErrOutcomeUnknown, err)
	}
	return err
}

// jitter spreads d over [d/2, d) so that retrying clients do not march in step.
func jitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// newHTTPRequest builds the request for one attempt.
func (c *Client) newHTTPRequest(ctx context.Context, base string, r *request, body []byte) (*http.Request, error) {
	u := base + r.path
	if len(r.query) > 0 {
		u += "?" + r.query.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u, rd)
	if err != nil {
		return nil, fmt.Errorf("gsd/client: %w", err)
	}
	for k, v := range c.header {
		req.Header[k] = v
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("User-Agent", "gsd-client")
	return req, nil
}

// send performs one HTTP exchange and turns transport failures and non-2xx
// answers into errors. On success the caller owns resp.Body.
func (c *Client) send(req *http.Request, base string) (*http.Response, error) {
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, &connError{addr: base, sent: !isDialError(err), err: err}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		defer resp.Body.Close()
		return nil, decodeError(resp)
	}
	return resp, nil
}

func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// decodeError reads an error answer: {"code","error"} or any other body.
func decodeError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	e := &Error{Status: resp.StatusCode}
	var j wire.ErrorBody
	if json.Unmarshal(b, &j) == nil && (j.Code != "" || j.Error != "") {
		e.Code, e.Message = j.Code, j.Error
	} else {
		e.Message = strings.TrimSpace(string(b))
		if len(e.Message) > 512 {
			e.Message = e.Message[:512] + "..."
		}
	}
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		e.Message = strings.TrimSpace("redirect to " + resp.Header.Get("Location") + " not followed " + e.Message)
	}
	return e
}

// do runs a unary call and decodes the JSON answer into out (if not nil).
func (c *Client) do(ctx context.Context, r *request, out any) error {
	return c.exec(ctx, r, func(ctx context.Context, base string, body []byte) error {
		actx, cancel := ctx, context.CancelFunc(func() {})
		if c.attemptTimeout > 0 {
			actx, cancel = context.WithTimeout(ctx, c.attemptTimeout)
		}
		defer cancel()
		req, err := c.newHTTPRequest(actx, base, r, body)
		if err != nil {
			return err
		}
		req.Header.Set("Accept", "application/json")
		resp, err := c.send(req, base)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
		if err != nil {
			return &connError{addr: base, sent: true, err: err}
		}
		if out == nil {
			return nil
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		if err := dec.Decode(out); err != nil {
			return fmt.Errorf("gsd/client: decode %s %s answer: %w", r.method, r.path, err)
		}
		return nil
	})
}

// path joins escaped path segments under /v1.
func path(segs ...string) string {
	var b strings.Builder
	b.WriteString("/v1")
	for _, s := range segs {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(s))
	}
	return b.String()
}
