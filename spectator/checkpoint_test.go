package spectator

import (
	"fmt"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// signedUpTo is a CheckpointFunc of a log that signed a checkpoint at
// every size up to n.
func signedUpTo(n uint64) CheckpointFunc {
	return func(world string, seq uint64) []byte {
		if seq == 0 {
			return nil
		}
		return fmt.Appendf(nil, "%s\n%d\n", world, min(seq, n))
	}
}

func TestADelayedKeyframeCarriesNoCheckpointNewerThanItsSeq(t *testing.T) {
	a := access(t, map[string]string{"x": ""}, nil, fsm.TeamRule{})
	g := newGame(t, "w", strFields("x"))
	fd, clk := newFeed(), &clock{now: time.Unix(0, t0)}
	cfg := pipelineConfig(t, a, fd, clk)
	cfg.Delay, cfg.MaxClockSkew = time.Minute, 0
	cfg.Checkpoint = signedUpTo(2) // the node signed both events already
	p, err := New(cfg)
	require.NoError(t, err)
	defer p.Close()
	fd.push(g.act("ann", set("ann", "x", fsm.String("1"))))
	released := g.time
	fd.push(g.act("ann", set("ann", "x", fsm.String("2"))))
	clk.set(time.Unix(0, released).Add(time.Minute)) // event 1 is old enough, event 2 not
	require.Eventually(t, func() bool { return p.Seq() == 1 }, 10*time.Second, time.Millisecond)
	m, err := p.Join(View{})
	require.NoError(t, err)
	k := decodeKeyframe(t, next(t, m))
	require.Equal(t, uint64(1), k.Seq)
	require.Equal(t, "w\n1\n", k.Checkpoint, "the checkpoint of 2 events would tell the view event 2 exists")
}

func TestCheckpointsGoOnlyToKeyframesOfWorldsThatHideNothing(t *testing.T) {
	k := &wire.Keyframe{World: "w", Seq: 3}
	AddCheckpoint(k, nil, nil)
	require.Empty(t, k.Checkpoint, "no audit log")
	AddCheckpoint(k, access(t, map[string]string{"hand": "owner"}, nil, fsm.TeamRule{}), signedUpTo(3))
	require.Empty(t, k.Checkpoint, "a world with hidden fields: its hashes are for those who see all")
	AddCheckpoint(k, access(t, map[string]string{"x": ""}, nil, fsm.TeamRule{}), signedUpTo(3))
	require.Equal(t, "w\n3\n", k.Checkpoint)
	k.Checkpoint = ""
	AddCheckpoint(k, nil, signedUpTo(3)) // a caller that sees every field
	require.Equal(t, "w\n3\n", k.Checkpoint)
}
