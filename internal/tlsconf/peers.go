package tlsconf

import (
	"fmt"
	"sync/atomic"
)

// PeerCheck admits a peer by the node id its certificate names: nil to
// admit it. It runs on every node-to-node connection (Raft under the
// mux both ways, and the node's own HTTP calls) and on every node-only
// HTTP request, so it must be cheap: a look-up in the cluster's
// membership, not a call.
type PeerCheck func(id string) error

// peerCheck holds a Cluster's PeerCheck and counts its refusals.
type peerCheck struct {
	check   atomic.Pointer[PeerCheck]
	refused atomic.Uint64
}

// SetPeerCheck installs check: from now on a peer whose certificate is of
// the cluster but names a node check refuses is refused too (counted by
// Refused, logged). Without one, every certificate of the CA that names
// a node is admitted. A node sets it once it knows its membership.
func (c *Cluster) SetPeerCheck(check PeerCheck) {
	c.peers.check.Store(&check)
}

// Refused returns how many peers the peer check has refused.
func (c *Cluster) Refused() uint64 { return c.peers.refused.Load() }

// admit runs the peer check on id.
func (c *Cluster) admit(id string) error {
	p := c.peers.check.Load()
	if p == nil {
		return nil
	}
	if err := (*p)(id); err != nil {
		c.peers.refused.Add(1)
		c.log.Warn("tls: peer refused: its certificate names a node that is not a member", "node", id, "err", err)
		return fmt.Errorf("%w: node %q: %v", ErrNotMember, id, err)
	}
	return nil
}
