package store

import (
	"crypto/sha256"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
)

// A voter that reads log 10 holds back the rules key player_data and
// every data write (version_gate, nothing proposed); once it reads log
// 11, both apply.
func TestVersionGateHoldsPlayerDataUntilEveryVoterReadsLog11(t *testing.T) {
	t.Parallel()
	log10 := fsm.Supported()
	log10.Log = 10
	c := newCluster(t, 3, func(cfg *Config) {
		if cfg.ID == "n3" {
			cfg.Versions = log10
		}
	})
	l := c.leader()
	require.NoError(t, l.CreateWorld(ctxT(t), "w", fsm.Rules{}))
	var old *Store
	for _, s := range c.nodes {
		if s != l {
			require.NoError(t, l.Join(ctxT(t), s.Self()))
		}
		if s.cfg.ID == "n3" {
			old = s
		}
	}
	if old == l {
		t.Skip("n3 leads: its own versions are not gated") // the leader reads what it proposes
	}
	c.waitReplicated()
	rules := fsm.Rules{Schema: fsm.Schema{PlayerData: fsm.PlayerDataRule{PlayerWritable: []string{"loadout"}}}}
	write := &fsm.SessionCmd{World: "w", Player: "ann", Data: []fsm.DataItem{{Key: "gold", Value: fsm.Int(1)}}}
	last := l.raft.LastIndex()
	_, err := l.UpdateRules(ctxT(t), "w", rules, 0)
	require.ErrorIs(t, err, ErrVersionGate)
	require.ErrorContains(t, err, "voter n3 reads log 10")
	_, err = l.Session(ctxT(t), fsm.CmdSessionData, write)
	require.ErrorIs(t, err, ErrVersionGate)
	require.NotContains(t, proposedSince(t, l, last), fsm.CmdUpdateRules)
	require.NotContains(t, proposedSince(t, l, last), fsm.CmdSessionData)

	old.cfg.Versions = fsm.Versions{} // upgraded: reports what this binary reads
	require.NoError(t, l.Join(ctxT(t), old.Self()))
	_, err = l.UpdateRules(ctxT(t), "w", rules, 0)
	require.NoError(t, err)
	info, err := l.Session(ctxT(t), fsm.CmdSessionData, write)
	require.NoError(t, err)
	require.Equal(t, map[string]fsm.Value{"gold": fsm.Int(1)}, info.Data)
	c.waitReplicated()
	c.ensureSameHashes("w")
}

// A game server's write and a player's own write survive a full restart,
// from the log or from a snapshot, with their versions.
func TestWrittenPlayerDataSurvivesAFullRestart(t *testing.T) {
	t.Parallel()
	for _, snap := range []bool{false, true} {
		c := newCluster(t, 1, nil)
		l := c.leader()
		rules := fsm.Rules{Schema: fsm.Schema{PlayerData: fsm.PlayerDataRule{PlayerWritable: []string{"loadout"}}}}
		require.NoError(t, l.CreateWorld(ctxT(t), "arena", rules))
		_, err := l.Session(ctxT(t), fsm.CmdSessionOpen, &fsm.SessionCmd{World: "arena", ID: "s1", Player: "ann", TokenHash: sha256.Sum256([]byte("t"))})
		require.NoError(t, err)
		_, err = l.Session(ctxT(t), fsm.CmdSessionData, &fsm.SessionCmd{World: "arena", Player: "ann", Data: []fsm.DataItem{{Key: "gold", Value: fsm.Int(40)}}})
		require.NoError(t, err)
		_, err = l.Session(ctxT(t), fsm.CmdSessionData, &fsm.SessionCmd{World: "arena", ID: "s1", Player: "ann", Data: []fsm.DataItem{{Key: "loadout", Value: fsm.String("sniper")}}})
		require.NoError(t, err)
		_, err = l.Session(ctxT(t), fsm.CmdSessionData, &fsm.SessionCmd{World: "arena", ID: "s1", Player: "ann", Data: []fsm.DataItem{{Key: "gold", Value: fsm.Int(1e6)}}})
		require.ErrorIs(t, err, fsm.ErrForbidden)
		before, err := l.PlayerRecords("arena")
		require.NoError(t, err)
		require.Len(t, before, 1)
		require.Equal(t, map[string]fsm.Value{"gold": fsm.Int(40), "loadout": fsm.String("sniper")}, before[0].Data)
		if snap {
			_, err = l.Snapshot(ctxT(t))
			require.NoError(t, err)
		}
		require.NoError(t, l.Close(ctxT(t)))

		s := c.restart(0)
		c.waitLeader()
		require.Eventually(t, func() bool {
			d, err := s.PlayerData("arena")
			return err == nil && len(d) == 1
		}, 10*time.Second, 5*time.Millisecond, "snapshot %t", snap)
		after, err := s.PlayerRecords("arena")
		require.NoError(t, err)
		require.Equal(t, before, after, "snapshot %t", snap)
	}
}
