package audit

import "net/http"

// guard refuses the audit reads of a world whose rules restrict fields
// to a caller who may not see everything (edge.Core.GuardHashes): a leaf
// hash is the hash of a whole event, hidden changes included, and proofs
// and checkpoints carry such hashes too.
func (a *API) guard(r *http.Request) error {
	return a.GuardHashes(r, r.PathValue("world"), "its audit hashes")
}
