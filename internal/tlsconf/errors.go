package tlsconf

import "errors"

// Sentinel errors of package tlsconf, checked with errors.Is.
var (
	// ErrNotClusterPeer: a peer's certificate is missing, not signed by
	// the cluster CA, or names no node.
	ErrNotClusterPeer = errors.New("gsd/tlsconf: not a node of this cluster")
	// ErrNotMember: a peer's certificate is of the cluster, but the node
	// it names is not a member (the peer check refused it).
	ErrNotMember = errors.New("gsd/tlsconf: not a member of the cluster")
	// ErrBadPEM: a file holds no usable certificate or key.
	ErrBadPEM = errors.New("gsd/tlsconf: bad PEM")
)
