package play

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/gsd-dev/gsd/api/internal/apitest"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
)

// askedSeqs records the seqs keyframes asked checkpoints for.
type askedSeqs struct {
	mu   sync.Mutex
	seqs []uint64
}

func (a *askedSeqs) get() []uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.seqs)
}

// checkpointsOf returns a node option whose audit log signed a
// checkpoint at every size up to what the keyframe asks.
func checkpointsOf(asked *askedSeqs) func(*nodeConfig) {
	return func(c *nodeConfig) {
		c.Checkpoints = func(world string, seq uint64) []byte {
			asked.mu.Lock()
			defer asked.mu.Unlock()
			asked.seqs = append(asked.seqs, seq)
			return fmt.Appendf(nil, "%s\n%d\n", world, seq)
		}
	}
}

// A player who may see every field gets the audit checkpoint at the
// keyframe's seq in it; one whose world hides fields from it gets none
// (the hashes are only for those who see everything).
func TestKeyframeCarriesTheAuditCheckpointToThoseWhoSeeEveryField(t *testing.T) {
	st := apitest.StartStore(t)
	require.NoError(t, st.CreateWorld(context.Background(), "open", fsm.Rules{}))
	_, _, err := st.Act(context.Background(), &fsm.Action{World: "open", Player: "gm", Seq: 1,
		Ops: []fsm.Op{{Kind: fsm.OpSet, Entity: "e", Field: "n", Value: fsm.Int(42)}}})
	require.NoError(t, err)
	var asked askedSeqs
	env := newEnvFor(t, st, fastPlay, checkpointsOf(&asked))
	_, kf := keyframeHello(t, dialPlay(t, env.WSURL("open")), "ann")
	require.Equal(t, "open\n1\n", kf["checkpoint"])
	require.Equal(t, []uint64{1}, asked.get(), "asked at the keyframe's seq")

	fog := apitest.StartStore(t)
	require.NoError(t, fog.CreateWorld(context.Background(), "fog", fsm.Rules{}))
	fogSet(t, fog, 1, false, "ann", "gold", fsm.String("ann-gold"))
	env = newEnvFor(t, apitest.NewRuledStore(fog, fogRules), fastPlay, checkpointsOf(&asked))
	_, kf = keyframeHello(t, dialPlay(t, env.WSURL("fog")), "ann")
	require.NotContains(t, kf, "checkpoint")
	require.Equal(t, []uint64{1}, asked.get(), "not asked for a view that hides fields")
}
