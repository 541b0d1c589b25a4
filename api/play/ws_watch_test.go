package play

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/stretchr/testify/require"
)

// watchedConn is a connection past its handshake with a control queue of
// one message and no session to check (it said bye), for the watcher's
// rounds.
func watchedConn(t *testing.T, cfg Config) *playConn {
	c := &playConn{cfg: cfg, codec: codecJSON, out: make(chan []byte, 1), ob: newOutbox(1, codecJSON), ready: make(chan struct{})}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	t.Cleanup(c.cancel)
	c.bye.Store(true)
	return c
}

func TestWatcherPingsEveryIntervalAndCutsOffAQueueFullTooLong(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PingInterval, cfg.SlowTimeout, cfg.IdleTimeout = time.Second, 2*time.Second, time.Hour
	c := watchedConn(t, cfg)
	t0 := time.Now()
	c.lastRead.Store(t0.UnixNano())
	at := func(d time.Duration) time.Time { return t0.Add(d) }

	c.periodic(t0)
	require.True(t, c.nextPing.IsZero(), "before the handshake ends the watcher leaves it alone")
	close(c.ready)
	c.periodic(t0)
	require.Empty(t, c.out, "the first round only schedules the first ping")
	c.periodic(at(500 * time.Millisecond))
	require.Empty(t, c.out, "not due yet")
	c.periodic(at(time.Second))
	require.Len(t, c.out, 1)
	var ping struct {
		Type string `json:"type"`
		T    int64  `json:"t"`
	}
	require.NoError(t, json.Unmarshal(<-c.out, &ping))
	require.Equal(t, "ping", ping.Type)
	require.Equal(t, at(time.Second).UnixNano(), ping.T)

	// The queue is full when the next ping is due: it waits, round after
	// round, and SlowTimeout later the connection is cut off.
	c.out <- []byte("stuck")
	c.periodic(at(2 * time.Second))
	c.periodic(at(3 * time.Second))
	require.NoError(t, c.ctx.Err(), "waited 1 s of 2")
	c.periodic(at(4 * time.Second))
	require.Error(t, c.ctx.Err())
	require.ErrorIs(t, c.err, edge.ErrSlowConsumer)
	c.periodic(at(5 * time.Second)) // an ended connection: nothing more

	// A pending ping that finds room goes out.
	c2 := watchedConn(t, cfg)
	close(c2.ready)
	c2.lastRead.Store(t0.UnixNano())
	c2.out <- []byte("stuck")
	c2.periodic(t0)
	c2.periodic(at(time.Second))
	require.NotNil(t, c2.ping)
	<-c2.out
	c2.periodic(at(1500 * time.Millisecond))
	require.Nil(t, c2.ping)
	require.Len(t, c2.out, 1)
}

func TestWatcherClosesAConnectionThatReadNothingForIdleTimeout(t *testing.T) {
	cfg := DefaultConfig()
	c := watchedConn(t, cfg)
	close(c.ready)
	t0 := time.Now()
	c.lastRead.Store(t0.UnixNano())
	c.periodic(t0.Add(cfg.IdleTimeout))
	require.NoError(t, c.ctx.Err(), "idle exactly IdleTimeout: still open")
	c.periodic(t0.Add(cfg.IdleTimeout + time.Millisecond))
	require.ErrorIs(t, c.err, edge.ErrIdle)
}

func TestWatcherStoppedBeforeItStartsNeverRuns(t *testing.T) {
	w := newWatcher(&Service{cfg: DefaultConfig()})
	require.Equal(t, DefaultConfig().AckInterval, w.every, "rounds every AckInterval when it is the shorter")
	w.stop()
	w.start()
	require.False(t, w.started)
	w.stop() // again: a no-op
}
