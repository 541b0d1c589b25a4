package audit

import (
	"fmt"
	"net/http"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/spectator"
)

// guard refuses the audit reads of a world whose rules restrict fields
// (issue 13) to a caller who may not see everything: a leaf hash is the
// hash of a whole event, hidden changes included, so a hidden value from
// a small domain (a door, a card) could be found by hashing each guess
// with the rest of the event, which the caller sees. Proofs and
// checkpoints carry such hashes too. Game servers, admins and the cluster
// secret's holders (edge.Sight) read them as before, as does anyone in a
// world that restricts nothing. A world this node does not hold is left
// to the log, which answers for it.
func (a *API) guard(r *http.Request) error {
	world := r.PathValue("world")
	info, err := edge.WorldInfo(a.Backend(), world)
	if err != nil {
		return nil
	}
	acc, err := spectator.NewAccess(info.Rules)
	if err != nil || !acc.Restricted() {
		return err
	}
	sight, err := a.Sight(r)
	if err == nil && !sight.All {
		err = fmt.Errorf("%w: world %s restricts who sees its fields: its audit hashes are for game servers, admins and the cluster secret", edge.ErrForbidden, world)
	}
	return err
}
