package audit

import (
	"net/http"

	"github.com/gsd-dev/gsd/anticheat/audit/auditor"
)

// guard refuses the audit reads of a world whose rules restrict fields
// to a caller who may not see everything (edge.Core.GuardHashes): a leaf
// hash is the hash of a whole event, hidden changes included, and proofs
// and checkpoints carry such hashes too. With ?incarnation=N, by that
// incarnation's rules; where this node no longer knows them (a deleted or
// moved-away incarnation) only a caller who sees everything passes, and
// the others get the answer of an incarnation that never was
// (edge.Core.GuardIncarnationHashes). A malformed parameter is left to
// the route, which refuses it.
func (a *API) guard(r *http.Request) error {
	world := r.PathValue("world")
	inc, ok, err := incarnation(r)
	if err != nil || !ok {
		return a.GuardHashes(r, world, "its audit hashes")
	}
	return a.GuardIncarnationHashes(r, world, inc, "its audit hashes", auditor.NoTree(world, inc))
}
