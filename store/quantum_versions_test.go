package store

import (
	"testing"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
)

// A field's quantum (issue 13) needs log version 16: a voter that reads
// an older log would refuse the key in the rules' schema block, so the
// leader proposes neither a world nor a rules update that sets it while
// such a voter is in the group.
func TestQuantumWaitsForEveryVoterToReadLogVersion16(t *testing.T) {
	t.Parallel()
	quant := quantRules()
	old := newCluster(t, 1, func(cfg *Config) { cfg.Versions = fsm.Versions{Log: 15, Snapshot: fsm.SnapshotVersion, Wire: 1} })
	s := old.leader()
	require.ErrorIs(t, s.CreateWorld(ctxT(t), "w", quant), ErrVersionGate)
	require.NoError(t, s.CreateWorld(ctxT(t), "w", fsm.Rules{}), "rules without the key still go")
	_, err := s.UpdateRules(ctxT(t), "w", quant, 0)
	require.ErrorIs(t, err, ErrVersionGate)

	cur := newCluster(t, 1, nil).leader()
	require.NoError(t, cur.CreateWorld(ctxT(t), "w", quant))
	v, err := cur.UpdateRules(ctxT(t), "w", quant, 0)
	require.NoError(t, err)
	require.Equal(t, uint64(2), v)
}

// Every command that carries rules is gated on them: a salted world's
// create, and the import of a world whose rules set a quantum (its export
// holds them; a log 15 voter would refuse the import while the others
// install the world). ImportGateNeeds tells a move so before its fence,
// while ImportGate of the export format alone passes.
func TestSaltedCreateAndImportOfAQuantumWaitForLogVersion16(t *testing.T) {
	t.Parallel()
	quant := quantRules()
	cur := newCluster(t, 1, nil).leader()
	require.NoError(t, cur.CreateWorld(ctxT(t), "w", quant))
	blob, _, err := cur.ExportWorld("w", fsm.ExportFormat)
	require.NoError(t, err)

	old := newCluster(t, 1, func(cfg *Config) { cfg.Versions = fsm.Versions{Log: 15, Snapshot: fsm.SnapshotVersion, Wire: 1} })
	s := old.leader()
	require.ErrorIs(t, s.CreateSaltedWorld(ctxT(t), "salted", quant), ErrVersionGate)
	require.NoError(t, s.CreateSaltedWorld(ctxT(t), "salted", fsm.Rules{}), "a salted world without the key still goes")

	require.NoError(t, s.ImportGate(fsm.ExportFormat), "the format alone passes")
	require.ErrorIs(t, s.ImportGateNeeds(fsm.ImportRulesNeeds(1, quant)), ErrVersionGate)
	require.NoError(t, s.ImportGateNeeds(fsm.ImportRulesNeeds(1, fsm.Rules{})))
	_, err = s.ImportWorld(ctxT(t), "w", blob)
	require.ErrorIs(t, err, ErrVersionGate)
	_, err = s.World("w")
	require.ErrorIs(t, err, fsm.ErrUnknownWorld, "nothing imported")

	other := newCluster(t, 1, nil).leader()
	require.NoError(t, other.ImportGateNeeds(fsm.ImportRulesNeeds(1, quant)))
	_, err = other.ImportWorld(ctxT(t), "w", blob)
	require.NoError(t, err)
}

// quantRules are rules whose float field x has a quantum (log 16).
func quantRules() fsm.Rules {
	return fsm.Rules{Fields: map[string]fsm.FieldRule{"x": {Type: fsm.KindFloat, Policy: fsm.PolicyAuthoritative}},
		Schema: fsm.Schema{Access: map[string]fsm.FieldAccess{"x": {Quantum: 0.1}}}}
}
