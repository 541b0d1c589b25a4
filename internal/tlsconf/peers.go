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
// the cluster but names a node check refuses is refused too: a handshake
// fails (counted by Refused, logged), PeerNode returns an error. Without
// one, every certificate of the CA that names a node is admitted. A node
// sets it once it knows its membership.
func (c *Cluster) SetPeerCheck(check PeerCheck) {
	c.peers.check.Store(&check)
}

// Refused returns how many TLS handshakes the peer check has failed.
// PeerNode's refusals are not counted here: a join takes them, and the
// HTTP layer answers and counts the others.
func (c *Cluster) Refused() uint64 { return c.peers.refused.Load() }

// admit runs the peer check on id; a handshake's refusal is counted and
// logged.
func (c *Cluster) admit(id string, handshake bool) error {
	p := c.peers.check.Load()
	if p == nil {
		return nil
	}
	err := (*p)(id)
	if err == nil {
		return nil
	}
	if handshake {
		c.peers.refused.Add(1)
		c.log.Warn("tls: peer refused: its certificate names a node that is not a member", "node", id, "err", err)
	}
	return fmt.Errorf("%w: node %q: %v", ErrNotMember, id, err)
}
