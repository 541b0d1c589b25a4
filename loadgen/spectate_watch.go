package loadgen

import (
	"bytes"
	"compress/flate"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/gsd-dev/gsd/wire"
)

// watchFrames follows world's watch route on addr (a node or a relay) as
// a spectator does: a keyframe first, then a delta per tick, deflated
// and without versions where the server offers them. A full
// server's refusal (503 with Retry-After) is counted through refused and
// tried again after the time it asks (at most maxRetryAfter). It reports
// the time from the first dial to the first frame through joined (once,
// and only if that frame is a keyframe: anything else is an error) and
// counts the frames' bytes into n. It decodes nothing but the first
// frame's type: the load generator shares the cores with what it
// measures. It returns when ctx ends (nil) or the watch fails.
func watchFrames(ctx context.Context, addr, world string, n *atomic.Int64, joined func(time.Duration), refused func()) error {
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	start := time.Now()
	var ws *websocket.Conn
	query := "?versions=false" // a spectator writes nothing: no versions
	for {
		c, resp, err := websocket.Dial(ctx, addr+"/v1/worlds/"+world+"/watch"+query, &websocket.DialOptions{Subprotocols: watchSubprotocols})
		if err == nil {
			ws = c
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		if resp != nil && resp.StatusCode == http.StatusBadRequest && query != "" {
			query = "" // a server without versions=: frames with versions
			continue
		}
		if resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
			return fmt.Errorf("watch %s on %s: %w", world, addr, err)
		}
		refused()
		sleepCtx(ctx, retryAfter(resp.Header.Get("Retry-After")))
	}
	defer ws.CloseNow()
	ws.SetReadLimit(-1) // a keyframe holds the whole visible world
	deflated := ws.Subprotocol() == wire.SubprotocolWatchDeflate
	first := true
	head := make([]byte, 64)
	for {
		_, r, err := ws.Reader(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("watch %s on %s: %w", world, addr, err)
		}
		k, counted := 0, false
		if first && deflated {
			// Counted as sent (compressed); only its head inflated.
			var msg bytes.Buffer
			if _, err := io.Copy(&msg, r); err != nil {
				return fmt.Errorf("watch %s on %s: first frame: %w", world, addr, err)
			}
			n.Add(int64(msg.Len()))
			r, counted = flate.NewReader(&msg), true
		}
		if first {
			k, err = io.ReadFull(r, head)
			if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
				return fmt.Errorf("watch %s on %s: first frame: %w", world, addr, err)
			}
			if !isKeyframe(head[:k]) {
				return fmt.Errorf("watch %s on %s: first frame is not a keyframe: %.64s", world, addr, head[:k])
			}
			joined(time.Since(start))
			first = false
		}
		if counted {
			continue
		}
		m, err := io.Copy(io.Discard, r)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("watch %s on %s: %w", world, addr, err)
		}
		n.Add(int64(k) + m)
	}
}

// watchSubprotocols are what a spectator asks for: frames deflated once
// per frame on servers that offer it (docs/PROTOCOL.md, "Watching"),
// else JSON.
var watchSubprotocols = []string{wire.SubprotocolWatchDeflate, wire.SubprotocolJSON}

// maxRetryAfter bounds the wait a refusal asks for.
const maxRetryAfter = 30 * time.Second

// retryAfter reads a Retry-After in seconds (1 s when absent or bad, at
// most maxRetryAfter).
func retryAfter(h string) time.Duration {
	s, err := strconv.Atoi(h)
	if err != nil || s < 1 {
		return time.Second
	}
	return min(time.Duration(s)*time.Second, maxRetryAfter)
}

// isKeyframe reports whether a JSON frame's head names a keyframe (frames
// start with their type: docs/PROTOCOL.md, "Watching").
func isKeyframe(head []byte) bool {
	return bytes.HasPrefix(head, []byte(`{"type":"`+wire.TypeKeyframe+`"`))
}
