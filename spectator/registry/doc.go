// Package registry keeps the relays a cluster knows of (issue 13): each
// relay's id, public URL, region, the worlds it serves (none: all), its
// capacity and its viewers, and, for a relay that registers itself, the
// time of its last heartbeat. The records live in a reserved world,
// World, created on the first registration with rules that hide every
// field and let only servers and admins write (Rules): the registry is
// replicated like any world, without a change to the FSM.
//
// The package is pure: it builds the actions that put and remove a
// record, decodes records from entity reads, and picks the relays a
// viewer of a world should use (Pick). api/relays serves it over HTTP;
// gsdctl relay add|list|remove and gsdctl relay run --register call it.
package registry
