package loadgen

import (
	"io"
	"net/http"
	"sync/atomic"
	"time"
)

// ByteCounter counts the bytes a client sends and receives over HTTP: the
// request line, headers and body it writes, and the body it reads
// (response headers are estimated from their encoded size).
type ByteCounter struct {
	Sent, Received atomic.Int64
}

// Total returns sent + received.
func (b *ByteCounter) Total() int64 { return b.Sent.Load() + b.Received.Load() }

// Transport returns an http.Transport whose traffic is counted in b. Each
// transport keeps its own pool of up to conns connections per host; a
// fresh one means fresh connections.
func (b *ByteCounter) Transport(conns int) http.RoundTripper {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = max(conns, 2) * 4
	t.MaxIdleConnsPerHost = max(conns, 2)
	t.IdleConnTimeout = 90 * time.Second
	return &countingTransport{rt: t, c: b}
}

// HTTPClient returns an http.Client over b.Transport(conns).
func (b *ByteCounter) HTTPClient(conns int) *http.Client {
	return &http.Client{Transport: b.Transport(conns)}
}

type countingTransport struct {
	rt http.RoundTripper
	c  *ByteCounter
}

func (t *countingTransport) CloseIdleConnections() {
	if ci, ok := t.rt.(interface{ CloseIdleConnections() }); ok {
		ci.CloseIdleConnections()
	}
}

func headerSize(h http.Header) int64 {
	var n int64
	for k, vs := range h {
		for _, v := range vs {
			n += int64(len(k) + len(v) + 4)
		}
	}
	return n
}

func (t *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	n := int64(len(req.Method)+len(req.URL.RequestURI())+len(req.Host)+32) + headerSize(req.Header)
	if req.ContentLength > 0 {
		n += req.ContentLength
	}
	t.c.Sent.Add(n)
	resp, err := t.rt.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	t.c.Received.Add(int64(len(resp.Status)+12) + headerSize(resp.Header))
	resp.Body = &countingBody{ReadCloser: resp.Body, c: &t.c.Received}
	return resp, nil
}

type countingBody struct {
	io.ReadCloser
	c *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.c.Add(int64(n))
	return n, err
}
