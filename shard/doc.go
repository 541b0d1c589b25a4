// Package shard runs many Raft groups on one node. Mux shares one TCP
// listener among the node's groups. Each group gets a Layer (a
// raft.StreamLayer) from Mux.Listen, and builds its raft.NetworkTransport
// on it (store.Config.StreamLayer). Manager runs the groups, a store.Store
// each in its own data directory (and the meta group, shard/meta, under
// MetaGroup); a Map places worlds on shards, static or from the meta
// group (a MapSource), and Router answers where a world's commands go
// (see DESIGN.md).
//
// A connection for group g > 0 starts with a header naming g (header.go);
// the accepting Mux reads it and hands the connection to g's Layer. A
// connection without a header, whose first byte is one of raft's own RPC
// types, belongs to group 0: group 0 dials without a header too, so a node
// running group 0 over a Mux speaks exactly the protocol of a plain
// raft.NewTCPTransport, and clusters that mix old and new binaries keep
// working.
//
// With MuxConfig.TLS and DialTLS set, every connection is mutual TLS
// first and the header travels inside it (tls.go, issue 12).
//
// Planned (issue 14): gsd running the meta group, node membership
// through it, world migration.
package shard
