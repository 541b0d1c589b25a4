package wscork

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"
)

func TestCorkConnWritesABatchInOneWrite(t *testing.T) {
	under := &Recorder{}
	c := &Conn{Conn: under}

	_, err := c.Write([]byte("direct"))
	require.NoError(t, err)
	require.Equal(t, [][]byte{[]byte("direct")}, under.Written(), "an uncorked write goes straight to the socket")

	c.Cork()
	for _, s := range []string{"a", "bb", "ccc"} {
		n, err := c.Write([]byte(s))
		require.NoError(t, err)
		require.Equal(t, len(s), n)
	}
	require.Len(t, under.Written(), 1, "corked writes wait for uncork")
	require.NoError(t, c.Uncork())
	require.Equal(t, [][]byte{[]byte("direct"), []byte("abbccc")}, under.Written())

	require.NoError(t, c.Uncork(), "uncorking with nothing collected writes nothing")
	require.Len(t, under.Written(), 2)
}

// A cork never holds more than Limit bytes: a write that would take it
// past goes to the socket with what it holds, p not copied; a write as big
// as Limit or more never enters the cork's buffer.
func TestCorkConnNeverHoldsMoreThanTheLimit(t *testing.T) {
	under := &Recorder{}
	c := &Conn{Conn: under}
	c.Cork()
	_, err := c.Write(bytes.Repeat([]byte("x"), Limit-1))
	require.NoError(t, err)
	require.Empty(t, under.Written())
	_, err = c.Write([]byte("yz")) // past the limit: the cork's bytes and these go out
	require.NoError(t, err)
	lens := func() (ls []int) {
		for _, w := range under.Written() {
			ls = append(ls, len(w))
		}
		return ls
	}
	// A Recorder is not a TCP socket: net.Buffers writes the two parts one
	// after the other to it (one writev on TCP, see the test below).
	require.Equal(t, []int{Limit - 1, 2}, lens())
	require.Empty(t, c.buf, "the cork is empty")
	_, err = c.Write([]byte("after"))
	require.NoError(t, err)
	require.NoError(t, c.Uncork())
	require.Equal(t, []byte("after"), under.Written()[2])

	// A big write in a batch goes straight to the socket, after the bytes
	// corked before it; the buffer stays within Limit.
	c.Cork()
	_, err = c.Write([]byte("a"))
	require.NoError(t, err)
	big := bytes.Repeat([]byte("b"), 3*Limit)
	_, err = c.Write(big)
	require.NoError(t, err)
	require.LessOrEqual(t, cap(c.buf), Limit)
	_, err = c.Write([]byte("c"))
	require.NoError(t, err)
	require.NoError(t, c.Uncork())
	require.Equal(t, []int{Limit - 1, 2, 5, 1, 3 * Limit, 1}, lens())
	require.Nil(t, c.buf, "no buffer is held between batches")
	require.Nil(t, c.held)

	// A buffer grows by doubling up to Limit, never past it.
	c.Cork()
	for range 2 * Limit / 1000 {
		_, err = c.Write(bytes.Repeat([]byte("d"), 1000))
		require.NoError(t, err)
		require.LessOrEqual(t, cap(c.buf), Limit)
	}
	require.NoError(t, c.Uncork())
}

// On a TCP socket the cork's bytes and a write past the limit go out in
// one write call (writev), in order.
func TestCorkConnOverflowOnTCPArrivesInOrder(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	got := make(chan []byte, 1)
	go func() {
		s, err := ln.Accept()
		if err != nil {
			got <- nil
			return
		}
		defer s.Close()
		b, _ := io.ReadAll(s)
		got <- b
	}()
	tcp, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	c := NewConn(tcp, 10*time.Second)
	c.Cork()
	head, big := []byte("head"), bytes.Repeat([]byte("z"), 2*Limit)
	for _, p := range [][]byte{head, big, []byte("tail")} {
		_, err = c.Write(p)
		require.NoError(t, err)
	}
	require.NoError(t, c.Uncork())
	require.NoError(t, tcp.Close())
	writes, n := c.Written()
	require.Equal(t, uint64(2), writes, "head and big in one write, tail at uncork")
	require.Equal(t, uint64(len(head)+len(big)+4), n)
	require.Equal(t, append(append(append([]byte(nil), head...), big...), "tail"...), <-got)
}

func TestCorkConnFailedWriteSticks(t *testing.T) {
	boom := errors.New("boom")
	under := &Recorder{err: boom}
	c := &Conn{Conn: under}
	c.Cork()
	_, err := c.Write([]byte("a"))
	require.NoError(t, err, "a corked write only collects")
	require.ErrorIs(t, c.Uncork(), boom)
	_, err = c.Write([]byte("b"))
	require.ErrorIs(t, err, boom, "a connection whose write failed fails every later write")
	c.Cork()
	_, err = c.Write([]byte("c"))
	require.ErrorIs(t, err, boom)
}

func TestCorkConnWriteTimesOut(t *testing.T) {
	a, b := net.Pipe() // nobody reads b: a write blocks until its deadline
	defer a.Close()
	defer b.Close()
	c := &Conn{Conn: a, timeout: time.Millisecond}
	c.Cork()
	_, err := c.Write([]byte("stuck"))
	require.NoError(t, err)
	require.ErrorIs(t, c.Uncork(), os.ErrDeadlineExceeded)

	// A deadline that cannot be set fails the write the same way.
	require.NoError(t, a.Close())
	c2 := &Conn{Conn: a, timeout: time.Millisecond}
	_, err = c2.Write([]byte("closed"))
	require.Error(t, err)
}

// TestCorkHijackSendsMessagesInOneWrite upgrades through Hijack, as
// the play endpoint does, and writes three messages in one cork: the
// client reads three messages, and the socket saw one write for them.
func TestCorkHijackSendsMessagesInOneWrite(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	cl := &RecordingListener{Listener: ln}
	done := make(chan error, 1)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := &Hijack{ResponseWriter: w, Timeout: time.Second}
		ws, err := websocket.Accept(h, r, nil)
		if err != nil {
			done <- err
			return
		}
		defer ws.CloseNow()
		h.Conn.Cork()
		for _, m := range []string{"one", "two", "three"} {
			if err := ws.Write(context.Background(), websocket.MessageText, []byte(m)); err != nil {
				done <- err
				return
			}
		}
		done <- h.Conn.Uncork()
		_, _, _ = ws.Read(context.Background()) // until the client closes
	}))
	srv.Listener = cl
	srv.Start()
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	require.NoError(t, err)
	defer conn.CloseNow()
	for _, want := range []string{"one", "two", "three"} {
		_, got, err := conn.Read(ctx)
		require.NoError(t, err)
		require.Equal(t, want, string(got))
	}
	require.NoError(t, <-done)
	require.Len(t, cl.Conns(), 1)
	writes := cl.Conns()[0].Written()
	require.Len(t, writes, 2, "the handshake's response, then one write for the three messages")
	require.True(t, bytes.HasPrefix(writes[0], []byte("HTTP/1.1 101")))
	require.NoError(t, conn.Close(websocket.StatusNormalClosure, ""))
}

func TestCorkHijackWithoutAHijacker(t *testing.T) {
	rec := httptest.NewRecorder()
	h := &Hijack{ResponseWriter: rec}
	_, _, err := h.Hijack()
	require.Error(t, err)
	require.Nil(t, h.Conn)
	require.Same(t, rec, h.Unwrap().(*httptest.ResponseRecorder), "http.ResponseController reaches the server's writer")
}

func TestCorkConnFailsAWriteWhoseLimitFlushFails(t *testing.T) {
	boom := errors.New("boom")
	c := &Conn{Conn: &Recorder{err: boom}}
	c.Cork()
	_, err := c.Write(bytes.Repeat([]byte("x"), Limit+1))
	require.ErrorIs(t, err, boom)
	require.ErrorIs(t, c.WriteMessage(context.Background(), websocket.MessageBinary, []byte("x")), boom, "it sticks")
}

// A corked message waits for uncork; a connection that is ending takes
// no more messages (its close frame may follow), nor one whose socket
// failed.
func TestCorkWriteMessageCorksAndRefuses(t *testing.T) {
	under := &Recorder{}
	c := &Conn{Conn: under}
	ctx, cancel := context.WithCancel(context.Background())
	c.Cork()
	require.NoError(t, c.WriteMessage(ctx, websocket.MessageText, []byte("hi")))
	require.Empty(t, under.Written())
	require.NoError(t, c.Uncork())
	require.Equal(t, [][]byte{{0x81, 2, 'h', 'i'}}, under.Written())

	cancel()
	require.ErrorIs(t, c.WriteMessage(ctx, websocket.MessageText, []byte("late")), net.ErrClosed)
	require.Len(t, under.Written(), 1)

	boom := errors.New("boom")
	failed := &Conn{Conn: &Recorder{err: boom}}
	require.ErrorIs(t, failed.WriteMessage(context.Background(), websocket.MessageBinary, []byte{1}), boom)
	require.ErrorIs(t, failed.WriteMessage(context.Background(), websocket.MessageBinary, []byte{1}), boom, "it sticks")
}

// The write deadline is set again only once the last one set is
// timeout/deadlineSlack old: writes close together share it.
func TestCorkConnSetsTheWriteDeadlineOncePerSlack(t *testing.T) {
	under := &Recorder{}
	c := &Conn{Conn: under, timeout: time.Hour}
	deadlines := func() int {
		return under.Deadlines()
	}
	for range 3 {
		_, err := c.Write([]byte("x"))
		require.NoError(t, err)
	}
	require.Equal(t, 1, deadlines(), "three writes within an hour/16 share one deadline")
	c.mu.Lock()
	c.setAt = c.setAt.Add(-time.Hour / deadlineSlack)
	c.mu.Unlock()
	_, err := c.Write([]byte("x"))
	require.NoError(t, err)
	require.Equal(t, 2, deadlines(), "a write once the deadline is hour/16 old sets it again")
	require.Len(t, under.Written(), 4)
}

// Written counts the socket's write calls and bytes (a corked batch is
// one), Idle says whether a batch is corked, and an uncorked message
// leaves no buffer held.
func TestConnCountsItsWritesAndSaysWhenIdle(t *testing.T) {
	under := &Recorder{}
	c := NewConn(under, time.Second)
	require.True(t, c.Idle())
	require.NoError(t, c.WriteMessage(context.Background(), websocket.MessageText, []byte("a")))
	require.Nil(t, c.held, "an uncorked message's buffer goes back at once")
	c.Cork()
	require.False(t, c.Idle())
	for range 3 {
		require.NoError(t, c.WriteMessage(context.Background(), websocket.MessageBinary, []byte("bc")))
	}
	require.NoError(t, c.Uncork())
	require.True(t, c.Idle())
	writes, n := c.Written()
	require.Equal(t, uint64(2), writes)
	require.Equal(t, uint64(3+3*4), n)
	require.Equal(t, 1, under.Deadlines(), "two writes within a second/16 share the deadline")

	boom := errors.New("boom")
	under.Fail(boom)
	_, err := c.Write([]byte("x"))
	require.ErrorIs(t, err, boom, "a Recorder told to fail fails the write")
	require.Len(t, under.Written(), 2)
}

// Batch writes an item alone straight to the socket, and an item with
// others queued behind it together with them in one write; it stops at
// the first failed write, and a failed batch write is its error.
func TestBatchWritesWhatIsQueuedInOneWrite(t *testing.T) {
	under := &Recorder{}
	c := NewConn(under, time.Second)
	write := func(s string) error { _, err := c.Write([]byte(s)); return err }
	ch := make(chan string, 4)
	var inFlight atomic.Int32
	require.NoError(t, Batch(c, "a", ch, &inFlight, write))
	require.Equal(t, [][]byte{[]byte("a")}, under.Written(), "alone: one write, uncorked")

	ch <- "c"
	ch <- "d"
	require.NoError(t, Batch(c, "b", ch, &inFlight, write))
	require.Equal(t, [][]byte{[]byte("a"), []byte("bcd")}, under.Written(), "queued: one write for the three")
	require.Empty(t, ch)
	require.True(t, c.Idle())

	boom := errors.New("boom")
	ch <- "f"
	ch <- "g"
	n := 0
	err := Batch(c, "e", ch, &inFlight, func(s string) error {
		if n++; n == 2 {
			return boom
		}
		return write(s)
	})
	require.ErrorIs(t, err, boom)
	require.Len(t, ch, 1, "it stops at the failed write")
	require.Zero(t, inFlight.Load())
	require.Equal(t, []byte("e"), under.Written()[2], "what was written before goes out")
	require.True(t, c.Idle())

	under.Fail(boom)
	require.ErrorIs(t, Batch(c, "h", ch, &inFlight, write), boom, "the batch's socket write failed")
}

// A frame header carries its payload's length in 7 bits, 16 or 64 (RFC
// 6455 5.2); api/play's TestCorkWriteMessageWritesTheLibrarysFrame checks
// the whole frames against the library's.
func TestAppendFrameHeaderLengths(t *testing.T) {
	require.Equal(t, []byte{0x81, 125}, appendFrameHeader(nil, websocket.MessageText, 125))
	require.Equal(t, []byte{0x82, 126, 0, 126}, appendFrameHeader(nil, websocket.MessageBinary, 126))
	require.Equal(t, []byte{0x82, 126, 0xff, 0xff}, appendFrameHeader(nil, websocket.MessageBinary, 65535))
	require.Equal(t, []byte{0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0}, appendFrameHeader(nil, websocket.MessageText, 65536))
}

// Connections take their cork buffers from one pool, one after another:
// each sends only its own bytes.
func TestConnsSharingThePoolSendOnlyTheirOwnBytes(t *testing.T) {
	a, b := &Recorder{}, &Recorder{}
	ca, cb := NewConn(a, time.Second), NewConn(b, time.Second)
	for i := range 3 {
		ca.Cork()
		_, err := ca.Write(bytes.Repeat([]byte("a"), 100+i))
		require.NoError(t, err)
		require.NoError(t, ca.Uncork())
		cb.Cork()
		_, err = cb.Write([]byte("b"))
		require.NoError(t, err)
		require.NoError(t, cb.Uncork())
	}
	for i, w := range a.Written() {
		require.Equal(t, bytes.Repeat([]byte("a"), 100+i), w)
	}
	require.Equal(t, [][]byte{[]byte("b"), []byte("b"), []byte("b")}, b.Written())
}

// Batch counts an item in flight before it leaves the queue: at the
// instant each item has left it (take's hook, before the item is
// written), what is queued plus what is in flight is what Batch took
// from the queue and has not written, never less, so a queue's owner
// that checks that sum against its capacity (spectator.Member.room)
// never lets its writer fall further behind than the bound. Counted
// after the take (v := <-ch; inFlight.Store(...); write(v)), the hook
// finds the item in neither, every time. Counted before, for the instant
// between the count and the take it is seen in both, one item less room:
// a viewer within one frame of its bound may skip to a keyframe a frame
// early then, never late. That is the bound Batch keeps on purpose.
func TestBatchCountsAnItemBeforeItLeavesTheQueue(t *testing.T) {
	under := &Recorder{}
	c := NewConn(under, time.Second)
	ch := make(chan string, 3)
	for _, s := range []string{"b", "c", "d"} {
		ch <- s
	}
	var inFlight atomic.Int32
	var sums []int
	c.took = func() { sums = append(sums, len(ch)+int(inFlight.Load())) }
	var written []string
	err := Batch(c, "a", ch, &inFlight, func(s string) error {
		written = append(written, s)
		_, err := c.Write([]byte(s))
		return err
	})
	require.NoError(t, err)
	// b, c, d were queued; as each leaves, the ones taken and not
	// written (it and those corked before it) and the ones still queued
	// make 3.
	require.Equal(t, []int{3, 3, 3}, sums, "each item counted when it leaves the queue")
	require.Equal(t, []string{"a", "b", "c", "d"}, written)
	require.Zero(t, inFlight.Load(), "none once the batch is written")
	require.Equal(t, [][]byte{[]byte("abcd")}, under.Written())
}

// Batch counts the items it took from the queue whose bytes are still in
// the cork (each before it leaves the queue): what is queued plus what is
// in flight stays what was queued, until the socket takes the bytes.
func TestBatchCountsTheItemsInTheCork(t *testing.T) {
	under := &Recorder{}
	c := NewConn(under, time.Second)
	ch := make(chan string, 8)
	for _, s := range []string{"b", "c", "big", "d", "split", "e"} {
		ch <- s
	}
	var inFlight atomic.Int32
	type seen struct {
		item            string
		queued, counted int
	}
	var saw []seen
	err := Batch(c, "a", ch, &inFlight, func(s string) error {
		saw = append(saw, seen{s, len(ch), int(inFlight.Load())})
		switch s {
		case "big": // past the limit: the cork's bytes go with it
			_, err := c.Write(bytes.Repeat([]byte("x"), Limit+1))
			return err
		case "split": // a write past the limit, then a corked one
			if _, err := c.Write(bytes.Repeat([]byte("y"), Limit+1)); err != nil {
				return err
			}
		}
		_, err := c.Write([]byte(s))
		return err
	})
	require.NoError(t, err)
	require.Equal(t, []seen{
		{"a", 6, 0},     // first: the one being written, as uncorked
		{"b", 5, 1},     // counted before it left the queue
		{"c", 4, 2},     // b is in the cork
		{"big", 3, 3},   // b and c are
		{"d", 2, 1},     // big took the cork's bytes with it
		{"split", 1, 2}, // d is in the cork
		{"e", 0, 2},     // split's first write took d; its tail is corked
	}, saw)
	require.Zero(t, inFlight.Load(), "none once the batch is written")
	require.Equal(t, []byte("split"+"e"), under.Written()[len(under.Written())-1])
}

// A RecordingListener holding at a gate accepts connections whose writes
// after the first wait for the gate to open.
func TestRecordingListenerHoldsWritesAtAGate(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	rl := &RecordingListener{Listener: ln}
	defer rl.Close()
	gate := NewGate()
	rl.HoldAt(gate)
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := rl.Accept()
		if err != nil {
			c = nil
		}
		accepted <- c
	}()
	client, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer client.Close()
	server := <-accepted
	require.NotNil(t, server)
	defer server.Close()
	_, err = server.Write([]byte("first"))
	require.NoError(t, err, "the first write passes")
	wrote := make(chan error, 1)
	go func() { _, err := server.Write([]byte("second")); wrote <- err }()
	<-gate.Waiting()
	require.Empty(t, wrote, "the second waits")
	gate.Open()
	require.NoError(t, <-wrote)
	got := make([]byte, len("firstsecond"))
	_, err = io.ReadFull(client, got)
	require.NoError(t, err)
	require.Equal(t, "firstsecond", string(got))
	require.Len(t, rl.Conns(), 1)
}

// A write held at a gate fails at the connection's write deadline, as a
// socket's that takes nothing does.
func TestGateHonoursTheWriteDeadline(t *testing.T) {
	gate := NewGate()
	c := &Recorder{gate: gate}
	_, err := c.Write([]byte("first"))
	require.NoError(t, err)
	require.NoError(t, c.SetWriteDeadline(time.Now().Add(time.Millisecond)))
	_, err = c.Write([]byte("held"))
	require.ErrorIs(t, err, os.ErrDeadlineExceeded)
	require.NoError(t, c.SetWriteDeadline(time.Time{}))
	gate.Open()
	_, err = c.Write([]byte("open"))
	require.NoError(t, err)
}

// A message's header that would take the cork past Limit goes after the
// cork's bytes are written; a failed write there fails the message.
func TestWriteMessageHeaderPastTheLimit(t *testing.T) {
	under := &Recorder{}
	c := NewConn(under, time.Second)
	c.Cork()
	_, err := c.Write(bytes.Repeat([]byte("x"), Limit-2))
	require.NoError(t, err)
	require.NoError(t, c.WriteMessage(context.Background(), websocket.MessageText, []byte("hi")))
	require.Len(t, under.Written(), 1, "the cork's bytes went before the header")
	require.LessOrEqual(t, cap(c.buf), Limit)
	require.NoError(t, c.Uncork())
	require.Equal(t, []byte{0x81, 2, 'h', 'i'}, under.Written()[1])

	boom := errors.New("boom")
	c.Cork()
	_, err = c.Write(bytes.Repeat([]byte("x"), Limit-2))
	require.NoError(t, err)
	under.Fail(boom)
	require.ErrorIs(t, c.WriteMessage(context.Background(), websocket.MessageText, []byte("hi")), boom)
	require.ErrorIs(t, c.Uncork(), boom)
}
