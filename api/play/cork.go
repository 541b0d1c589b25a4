package play

import (
	"context"
	"fmt"

	"github.com/gsd-dev/gsd/api/edge"
)

// Corked writes (internal/wscork). Each WebSocket message the library
// writes ends in a flush to the socket, and on loopback or a LAN one
// write syscall costs more than encoding the frame. So a play
// connection's socket is a wscork.Conn: its writer corks it, writes every
// message it has (control messages, then the outbox's frames) and
// uncorks, which sends them all in one write. Under load more piles up
// between two wakes, so a busy node makes fewer, bigger writes. The
// writer frames its messages itself (wscork.Conn.WriteMessage) rather
// than going through the library's write path for each.

// writeCorked writes one message while the socket is corked: it only
// goes to memory, so it needs no timeout of its own (the batch's write
// has one).
func (c *playConn) writeCorked(b []byte) bool {
	if err := c.cork.WriteMessage(c.ctx, c.codec.messageType(), b); err != nil {
		c.fail(fmt.Errorf("%w: write: %v", edge.ErrSlowConsumer, err))
		return false
	}
	return true
}

// write writes one message within WriteTimeout; false (and the connection
// failed) when it could not.
func (c *playConn) write(b []byte) bool {
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.WriteTimeout)
	defer cancel()
	if err := c.ws.Write(ctx, c.codec.messageType(), b); err != nil {
		c.fail(fmt.Errorf("%w: write: %v", edge.ErrSlowConsumer, err))
		return false
	}
	return true
}
