// Package tlsconf builds gsd's TLS settings from files: the public
// certificate of the HTTP/WebSocket port (reloaded when its files change),
// and the cluster's mutual TLS, in which every node holds a certificate
// signed by the cluster CA that names it by a URI SAN gsd://node/<id>.
//
// Peers are verified by that SAN and the CA, never by the address dialed,
// so a node reached through a proxy (the fault suite's) or by a changed
// address is still recognised, and a process without a certificate of the
// cluster's CA can neither speak Raft (shard.Mux takes the configs built
// here) nor call a node-to-node route (api/edge takes them too).
//
// It also mints a development CA and node certificates (gsdctl tls). It
// imports the standard library only, so the admin CLI links no store, raft
// or bolt.
package tlsconf
