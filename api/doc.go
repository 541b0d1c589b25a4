// Package api is gsd's edge: the HTTP JSON surface through which clients
// create worlds, submit actions, read entities, follow a world's event feed
// and administer the cluster.
//
// Its place in the flow of one action: a handler decodes and validates the
// request (malformed input is answered 4xx before anything is proposed),
// hands the action to the Backend (the store, later the shard manager), and
// answers with the committed event. A follower never proposes: it forwards
// writes and linearizable reads to the leader's HTTP address itself, marked
// with HeaderForwarded so that a stale view of the leader cannot make a
// request loop. Errors become HTTP statuses and codes in exactly one place
// (classify in errors.go); docs/API.md lists them with the retry rules.
//
// api holds no game logic and never touches Raft or bolt; everything it
// needs from the replicated state goes through the Backend interface.
package api
