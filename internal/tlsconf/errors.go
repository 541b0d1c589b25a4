package tlsconf

import "errors"

// Sentinel errors of package tlsconf, checked with errors.Is.
var (
	// ErrNotClusterPeer: a peer's certificate is missing, not signed by
	// the cluster CA, or names no node.
	ErrNotClusterPeer = errors.New("gsd/tlsconf: not a node of this cluster")
	// ErrBadPEM: a file holds no usable certificate or key.
	ErrBadPEM = errors.New("gsd/tlsconf: bad PEM")
)
