package streams

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"strconv"
	"time"
)

// streamOut is where an event stream writes: Write buffers, Flush sends
// what is buffered, WriteChunk sends what is buffered and then c, which it
// neither keeps nor modifies (the fan's chunks are shared).
type streamOut interface {
	Write(p []byte) (int, error)
	WriteChunk(c []byte) error
	Flush() error
	SetWriteDeadline(t time.Time) error
}

// httpOut writes through net/http's ResponseWriter (HTTP/2, and wherever
// the connection cannot be taken over).
type httpOut struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func (o httpOut) Write(p []byte) (int, error) { return o.w.Write(p) }

func (o httpOut) WriteChunk(c []byte) error {
	if _, err := o.w.Write(c); err != nil {
		return err
	}
	return o.rc.Flush()
}

func (o httpOut) Flush() error { return o.rc.Flush() }

func (o httpOut) SetWriteDeadline(t time.Time) error { return o.rc.SetWriteDeadline(t) }

// countedOut counts the bytes written through a streamOut into to, once
// per flush: one add per line would contend across a thousand streams.
type countedOut struct {
	streamOut
	to interface{ Add(float64) }
	n  int
}

func (o *countedOut) Write(p []byte) (int, error) {
	o.n += len(p)
	return o.streamOut.Write(p)
}

func (o *countedOut) WriteChunk(c []byte) error {
	o.n += len(c)
	o.add()
	return o.streamOut.WriteChunk(c)
}

func (o *countedOut) Flush() error {
	o.add()
	return o.streamOut.Flush()
}

func (o *countedOut) add() {
	if o.n > 0 {
		o.to.Add(float64(o.n))
		o.n = 0
	}
}

// rawOut writes an HTTP/1.1 chunked body straight to a hijacked connection,
// one write (writev) per flush: net/http's own path takes two or more
// system calls per window above 4 KB (its buffers are 2 and 4 KB), and on a
// node serving a thousand spectators those calls are most of its CPU.
type rawOut struct {
	conn net.Conn
	buf  []byte // chunkHead bytes reserved for the chunk header, then data
}

// chunkHead is the room reserved for a chunk header: up to 16 hex digits
// and CRLF.
const chunkHead = 18

var crlf = []byte("\r\n")

func newRawOut(conn net.Conn) *rawOut {
	return &rawOut{conn: conn, buf: make([]byte, chunkHead, 4096)}
}

func (o *rawOut) Write(p []byte) (int, error) {
	o.buf = append(o.buf, p...)
	return len(p), nil
}

// head writes the header of a chunk of n bytes into the reserved room and
// returns the buffer from the header on.
func (o *rawOut) head(n int) []byte {
	var h [chunkHead]byte
	x := strconv.AppendUint(h[:0], uint64(n), 16)
	x = append(x, '\r', '\n')
	start := chunkHead - len(x)
	copy(o.buf[start:], x)
	return o.buf[start:]
}

func (o *rawOut) Flush() error { return o.WriteChunk(nil) }

func (o *rawOut) WriteChunk(c []byte) error {
	n := len(o.buf) - chunkHead + len(c)
	if n == 0 {
		return nil
	}
	defer func() { o.buf = o.buf[:chunkHead] }()
	if len(c) == 0 {
		o.buf = append(o.buf, crlf...)
		_, err := o.conn.Write(o.head(n))
		return err
	}
	bufs := net.Buffers{o.head(n), c, crlf}
	_, err := bufs.WriteTo(o.conn)
	return err
}

func (o *rawOut) SetWriteDeadline(t time.Time) error { return o.conn.SetWriteDeadline(t) }

// hijackStream takes over an HTTP/1.1 connection for an event stream: it
// writes the 200 header with w's header fields, cancels cancel when the
// client closes the connection, and returns the stream's output and the
// function that ends the body and closes the connection. ok is false when
// the connection cannot be taken over (nothing is written then).
func hijackStream(w http.ResponseWriter, r *http.Request, rc *http.ResponseController, timeout time.Duration, cancel context.CancelFunc) (out *rawOut, end func(), ok bool) {
	if r.ProtoMajor != 1 || r.ProtoMinor < 1 {
		return nil, nil, false
	}
	conn, brw, err := rc.Hijack()
	if err != nil {
		return nil, nil, false
	}
	h := w.Header().Clone()
	h.Set("Transfer-Encoding", "chunked")
	h.Set("Connection", "close")
	h.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	hb := &headerBuf{b: []byte("HTTP/1.1 200 OK\r\n")}
	_ = h.Write(hb)
	hb.b = append(hb.b, crlf...)
	_ = conn.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := conn.Write(hb.b); err != nil {
		conn.Close()
		cancel() // the stream ends at once
		return newRawOut(conn), func() {}, true
	}
	// The client sends nothing more; a read ends when it goes away.
	go func(rd *bufio.Reader) {
		var b [512]byte
		for {
			if _, err := rd.Read(b[:]); err != nil {
				cancel()
				return
			}
		}
	}(brw.Reader)
	out = newRawOut(conn)
	return out, func() {
		_ = conn.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = conn.Write([]byte("0\r\n\r\n"))
		conn.Close()
	}, true
}

// headerBuf collects http.Header.Write's output.
type headerBuf struct{ b []byte }

func (h *headerBuf) Write(p []byte) (int, error) {
	h.b = append(h.b, p...)
	return len(p), nil
}
