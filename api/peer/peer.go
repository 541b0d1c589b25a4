package peer

import (
	"net/http"
	"strings"

	"github.com/gsd-dev/gsd/api/edge"
)

// The node-to-node service. A node that does not serve a world's command
// (the Router names another node) calls that node here, never through the
// public JSON routes: forwarded actions and action batches, linearizable
// reads, play connections' session commands and their batched acks, and
// the admin and world commands (a world's creation, a rules update,
// membership changes, kick, ban, unban, player data export and import). The
// routes live under InternalPrefix; only nodes of the cluster call them
// (cluster_auth.go: the cluster secret when set, HeaderForwarded always),
// and they never send a call on again, so a stale route costs one
// not_leader refusal, never a loop. Every call goes out through
// peerRequest, the one place that sets node-to-node headers.
//
// Calls, each with its request and answer type:
//
//	POST /internal/v1/worlds/{world}/actions        ActionRequest → wire.Event
//	POST /internal/v1/worlds/{world}/actions:batch  batchRequest → batchResponse
//	POST /internal/v1/worlds/{world}/actions:forward  fsm.EncodeBatch of actions → edge.ActRouteAnswer (act.go)
//	GET  /internal/v1/worlds/{world}/entities/{id}  (none) → entityJSON (linearizable)
//	POST /internal/v1/worlds/{world}/sessions/{op}  sessionCmdJSON → sessionJSON
//	POST /internal/v1/sessions:acks                 acksJSON → acksAnswer
//	POST /internal/v1/worlds/{world}/checkpoints:mismatch  wire.CheckpointMismatch → wire.MismatchAnswer (mismatch.go)
//	GET  /internal/v1/worlds/{world}/archive        (from, limit) → edge.ArchivePage
//
// The admin and world commands take the public route's body and answer
// its answer (status included: a world's creation is 201), so they share
// the public body types (createWorldRequest, wire.RulesUpdate,
// fsm.NodeInfo, wire.Ban, wire.PlayerDataFile) and handlers:
//
//	POST   /internal/v1/worlds                               createWorldRequest → {"id"} (201)
//	PUT    /internal/v1/worlds/{world}/rules                 wire.RulesUpdate → wire.RulesVersion
//	POST   /internal/v1/cluster/join                         fsm.NodeInfo → {"ok"}
//	DELETE /internal/v1/cluster/nodes/{id}                   (none) → {"ok"}
//	POST   /internal/v1/cluster/transfer-leadership          (none) → {"ok"}
//	POST   /internal/v1/worlds/{world}/sessions/{id}/kick    wire.Ban → wire.SessionInfo
//	POST   /internal/v1/worlds/{world}/bans                  wire.Ban → wire.SessionInfo
//	DELETE /internal/v1/worlds/{world}/bans/{player}         (none) → wire.SessionInfo
//	GET    /internal/v1/worlds/{world}/sessions:export       (none) → wire.PlayerDataFile
//	POST   /internal/v1/worlds/{world}/sessions:import       wire.PlayerDataFile → wire.ImportAnswer
//	PATCH  /internal/v1/worlds/{world}/players/{player}/data wire.PlayerDataWrite → wire.PlayerData
//
// Who may run an admin command is decided once, by the node the admin
// called: its public route checks the cluster secret or an admin token
// (cluster_auth.go). The serving node trusts the calling node, as it does
// for forwarded actions: the internal route needs the cluster secret (with
// none, the HeaderForwarded mark), never an admin token, so a call is as
// strong as the public route's check and no weaker. None of these commands
// needs the admin's identity; the admin's Authorization still goes along,
// as with every relayed request.
//
// An error answer is an ErrorBody, which the caller turns into a
// *RemoteError (Classify keeps the serving node's status and code). The
// player's token, with auth on, travels in Authorization as the client
// sent it, and the serving node checks it again.

// API serves the node-to-node routes over the edge's shared core.
type API struct{ *edge.Core }

// New returns the node-to-node routes' handlers over core.
func New(core *edge.Core) *API { return &API{Core: core} }

// Handlers are the public and admin handlers that the internal routes
// serve to other nodes as they are.
type Handlers struct {
	Act, ActBatch, LinearizableEntity        http.HandlerFunc
	CreateWorld, UpdateRules, DeleteWorld    http.HandlerFunc
	Join, RemoveNode, TransferLeadership     http.HandlerFunc
	Kick, Ban, Unban, ExportData, ImportData http.HandlerFunc

	WritePlayerData http.HandlerFunc
}

// Register adds the node-to-node service to mux. The session and acks
// calls are also served at their former public paths, for followers of
// older versions during a rolling upgrade (docs/API.md), and the public
// admin and world routes still serve requests that followers of older
// versions proxy to them (marked HeaderForwarded: run here or refused).
func (p *API) Register(mux *http.ServeMux, h Handlers) {
	mux.HandleFunc("POST "+edge.InternalPrefix+"/worlds/{world}/actions", p.internalOnly(h.Act))
	mux.HandleFunc("POST "+edge.InternalPrefix+"/worlds/{world}/actions:batch", p.internalOnly(h.ActBatch))
	mux.HandleFunc("POST "+edge.InternalPrefix+"/worlds/{world}/actions:forward", p.ActRoute)
	mux.HandleFunc("GET "+edge.InternalPrefix+"/worlds/{world}/entities/{entity}", p.internalOnly(h.LinearizableEntity))
	mux.HandleFunc("POST "+edge.InternalPrefix+"/worlds/{world}/sessions/{op}", p.SessionCommand)
	mux.HandleFunc("POST "+edge.InternalPrefix+"/sessions:acks", p.SessionAcks)
	mux.HandleFunc("POST "+edge.InternalPrefix+"/worlds/{world}/checkpoints:mismatch", p.internalOnly(p.CheckpointMismatch))
	mux.HandleFunc("GET "+edge.InternalPrefix+"/worlds/{world}/archive", p.internalOnly(p.Archive))
	for pattern, h := range map[string]http.HandlerFunc{
		"POST /worlds":                            h.CreateWorld,
		"PUT /worlds/{world}/rules":               h.UpdateRules,
		"DELETE /worlds/{world}":                  h.DeleteWorld,
		"POST /cluster/join":                      h.Join,
		"DELETE /cluster/nodes/{id}":              h.RemoveNode,
		"POST /cluster/transfer-leadership":       h.TransferLeadership,
		"POST /worlds/{world}/sessions/{id}/kick": h.Kick,
		"POST /worlds/{world}/bans":               h.Ban,
		"DELETE /worlds/{world}/bans/{player}":    h.Unban,
		"GET /worlds/{world}/sessions:export":     h.ExportData,
		"POST /worlds/{world}/sessions:import":    h.ImportData,

		"PATCH /worlds/{world}/players/{player}/data": h.WritePlayerData,
	} {
		method, path, _ := strings.Cut(pattern, " ")
		mux.HandleFunc(method+" "+edge.InternalPrefix+path, p.internalOnly(h))
	}
	mux.HandleFunc("POST /v1/worlds/{world}/sessions/{op}", p.SessionCommand)
	mux.HandleFunc("POST /v1/sessions:acks", p.SessionAcks)
}

// internalOnly serves h to other nodes of the cluster only.
func (p *API) internalOnly(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if p.ForwardedOnly(w, r) {
			h(w, r)
		}
	}
}
