package fsm

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

// quantumRules are rules with a quantum (log 16) and a lifecycle key (log
// 6), so that a lower raise must not undo the quantum's.
func quantumRules(t *testing.T) Rules {
	t.Helper()
	var r Rules
	require.NoError(t, json.Unmarshal([]byte(`{"capacity":4,"fields":{"x":{"type":"float","policy":"authoritative","quantum":0.5}}}`), &r))
	return r
}

// TestSaltedCreateWithAQuantumNeedsLogVersion16: a salted world's create
// carries rules as a plain create does; a log 13-15 replica refuses the
// quantum's schema block (and would stop on the undecodable entry), so the
// salted create of such rules needs log 16 too, and without a quantum it
// needs log 13 as before.
func TestSaltedCreateWithAQuantumNeedsLogVersion16(t *testing.T) {
	r := quantumRules(t)
	c := Command{Kind: CmdCreateWorldSalted, World: &WorldSpec{ID: "w", Rules: r, Salted: true}}
	require.Equal(t, Versions{Log: 16, Snapshot: 9, Wire: 1}, Needs(&c))
	require.False(t, Versions{Log: 15, Snapshot: SnapshotVersion, Wire: 1}.Covers(Needs(&c)))
	noQ := Rules{Fields: r.Fields, Schema: Schema{Capacity: 4}}
	c.World.Rules = noQ
	require.Equal(t, Versions{Log: 13, Snapshot: 9, Wire: 1}, Needs(&c))
}

// TestImportOfAQuantumWorldNeedsLogVersion16: an export carries the
// world's rules, which a log 15 replica's import cannot decode (it would
// refuse the import while log 16 replicas install the world), so the
// import of a world whose rules carry a quantum needs log 16 whatever the
// export's format; other worlds' imports need what their format needs.
func TestImportOfAQuantumWorldNeedsLogVersion16(t *testing.T) {
	h := newHarness(t)
	h.createWorld("q", quantumRules(t))
	h.createWorld("plain", Rules{Schema: Schema{Capacity: 4}})
	for _, format := range []byte{1, ExportFormat} {
		blob, _ := h.export("q", format)
		c := cmdImport("q", blob)
		need := Needs(&c)
		require.Equal(t, uint32(16), need.Log, "format %d", format)
		require.Equal(t, ImportNeeds(format).Snapshot, need.Snapshot, "format %d", format)
		require.False(t, Versions{Log: 15, Snapshot: SnapshotVersion, Wire: 1}.Covers(need))
		require.Equal(t, need, ImportRulesNeeds(format, quantumRules(t)), "what a move asks before the fence")

		plain, _ := h.export("plain", format)
		c = cmdImport("plain", plain)
		require.Equal(t, ImportNeeds(format), Needs(&c), "format %d", format)
	}
	// A blob whose rules do not decode needs what its format needs: every
	// replica refuses it alike (malformed).
	blob, _ := h.export("q", ExportFormat)
	bad := append([]byte(nil), blob[:len(exportMagic)+2]...)
	c := cmdImport("q", bad)
	require.Equal(t, ImportNeeds(ExportFormat), Needs(&c))
	c = cmdImport("q", []byte("not an export"))
	require.Equal(t, ImportNeeds(0), Needs(&c))
}
