package main

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/anticheat/audit"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

func TestAuditKeyFlagsAreChecked(t *testing.T) {
	priv, _, err := audit.GenerateKey("k")
	require.NoError(t, err)
	o := auditOptions{keyFiles: []string{writeFile(t, priv+"\n"), writeFile(t, priv)}, signInterval: time.Second}
	s, err := o.signers()
	require.NoError(t, err)
	require.Len(t, s, 2)

	for _, bad := range []auditOptions{
		{signInterval: -time.Second},
		{keyFiles: []string{filepath.Join(t.TempDir(), "missing.key")}, signInterval: time.Second},
		{keyFiles: []string{writeFile(t, "not a key")}, signInterval: time.Second},
	} {
		_, err := bad.signers()
		require.Error(t, err)
		require.ErrorAs(t, err, new(usageError))
	}
	code := run(context.Background(), []string{"--audit-key", filepath.Join(t.TempDir(), "missing.key")}, &syncBuffer{}, &syncBuffer{})
	require.NotZero(t, code)
}

// A node without a key keeps the trees and serves proofs; asking it for
// a signed checkpoint names the missing key.
func TestANodeWithoutAnAuditKeyServesProofsButSignsNothing(t *testing.T) {
	t.Parallel()
	n := startNode(t, "solo", t.TempDir())
	n.waitLeader(t)
	c := n.client(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, c.CreateWorld(ctx, "arena", wire.Rules{}))
	for seq := uint64(1); seq <= 3; seq++ {
		_, err := c.Act(ctx, "arena", incr("p1", seq, "e1", 1))
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool {
		p, err := c.AuditProof(ctx, "arena", 3, 3)
		return err == nil && p.Size == 3 && len(p.Proof) == 1 // leaf 3 of 3: its sibling is the root of leaves 1 and 2
	}, time.Minute, 10*time.Millisecond)
	_, err := c.AuditCheckpoint(ctx, "arena")
	require.ErrorContains(t, err, wire.CodeNoAuditKey)
}
