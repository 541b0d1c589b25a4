// Package api is gsd's edge: the HTTP JSON surface through which clients
// create worlds, submit actions, read entities, follow a world's event feed
// and administer the cluster.
//
// Its place in the flow of one action: a handler decodes and validates the
// request (malformed input is answered 4xx before anything is proposed),
// asks the Router where the world's commands go (router.go), runs the
// action on the Group it names when this node leads it, and answers with
// the committed event. A node that does not lead never proposes: it sends
// writes and linearizable reads to the leader itself, as calls of the
// internal node-to-node service (internal.go) or proxied admin requests,
// which are never sent on again, so a stale view of the leader cannot make
// a request loop. Errors become HTTP statuses and codes in exactly one
// place (Classify in errors.go); docs/API.md lists them with the retry
// rules.
//
// api holds no game logic and never touches Raft or bolt; everything it
// needs from the replicated state goes through the Router, its Groups and
// the Backend (this node's view).
package api
