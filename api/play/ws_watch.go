package play

import (
	"fmt"
	"sync"
	"time"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
)

// The watcher does every play connection's periodic work on this node in
// one goroutine, where each connection had a goroutine and two timers of
// its own: every round (AckInterval, or PingInterval if shorter) it
// checks each connection's session on this node's applied state (watch:
// replaced, resumed elsewhere, kicked), closes the connections that read
// nothing for IdleTimeout (4408), and queues a ping on each every
// PingInterval; a ping that finds the connection's control queue full is
// tried again each round and cuts the connection off (4429) once it has
// waited SlowTimeout, as a blocked send does. The first play connection
// starts it; Service.Close stops it.

type watcher struct {
	s       *Service
	every   time.Duration
	stopped chan struct{} // closed by stop
	done    chan struct{} // closed when the loop has returned

	mu       sync.Mutex
	started  bool
	stopOnce sync.Once
}

func newWatcher(s *Service) *watcher {
	return &watcher{s: s, every: min(s.cfg.AckInterval, s.cfg.PingInterval), stopped: make(chan struct{}), done: make(chan struct{})}
}

// start runs the loop, once, unless stop came first.
func (w *watcher) start() {
	w.mu.Lock()
	defer w.mu.Unlock()
	select {
	case <-w.stopped:
		return
	default:
	}
	if !w.started {
		w.started = true
		go w.loop()
	}
}

// stop ends the loop and waits for it.
func (w *watcher) stop() {
	w.stopOnce.Do(func() {
		w.mu.Lock()
		close(w.stopped)
		started := w.started
		w.mu.Unlock()
		if started {
			<-w.done
		}
	})
}

func (w *watcher) loop() {
	defer close(w.done)
	t := time.NewTicker(w.every)
	defer t.Stop()
	for {
		select {
		case <-w.stopped:
			return
		case now := <-t.C:
			conns := w.s.playConns()
			if len(conns) > 0 {
				w.s.readFences() // the worlds' infos, read only when someone plays
			}
			for _, c := range conns {
				c.periodic(now)
			}
		}
	}
}

// periodic is one watcher round for c: its session, idleness and ping.
// Only the watcher calls it, after the handshake, so it owns c.current
// (through watch) and the ping fields.
func (c *playConn) periodic(now time.Time) {
	select {
	case <-c.ready:
	default:
		return // the handshake is still checking the session itself
	}
	if c.ctx.Err() != nil {
		return
	}
	if err := c.watch(); err != nil {
		c.fail(err)
		return
	}
	if idle := now.Sub(time.Unix(0, c.lastRead.Load())); idle > c.cfg.IdleTimeout {
		c.fail(fmt.Errorf("%w: nothing read for %s", edge.ErrIdle, idle.Round(time.Millisecond)))
		return
	}
	switch {
	case c.nextPing.IsZero():
		c.nextPing = now.Add(c.cfg.PingInterval)
		return
	case c.ping == nil && now.Before(c.nextPing):
		return
	case c.ping == nil:
		b, _ := c.codec.marshal(wire.Ping{Type: wire.TypePing, T: now.UnixNano()}) // two integers and a string: never fails
		c.ping, c.pingSince, c.nextPing = b, now, now.Add(c.cfg.PingInterval)
	}
	select {
	case c.out <- c.ping:
		c.ping = nil
		c.wakeWriter()
	default:
		if now.Sub(c.pingSince) >= c.cfg.SlowTimeout {
			c.fail(fmt.Errorf("%w: outbound queue of %d messages full for %s", edge.ErrSlowConsumer, c.cfg.QueueSize, c.cfg.SlowTimeout))
		}
	}
}

// readFences notes this node's worlds that moved to another shard (once
// a round: one read of the worlds, not one per connection).
func (s *Service) readFences() {
	var fenced map[string]fsm.Fence
	for _, wi := range s.b.Worlds() {
		if wi.Moved != nil {
			if fenced == nil {
				fenced = make(map[string]fsm.Fence)
			}
			fenced[wi.ID] = *wi.Moved
		}
	}
	s.fenced.Store(&fenced)
}
