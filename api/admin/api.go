package admin

import (
	"net/http"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/wire"
)

// API serves the admin routes over the edge's shared core.
type API struct{ *edge.Core }

// New returns the admin routes' handlers over core.
func New(core *edge.Core) *API { return &API{Core: core} }

// Register adds the admin, status and health routes to mux.
func (a *API) Register(mux *http.ServeMux) {
	mux.HandleFunc("DELETE /v1/worlds/{world}", a.DeleteWorld)
	mux.HandleFunc("GET /v1/worlds/{world}/sessions", a.Presence)
	mux.HandleFunc("POST /v1/worlds/{world}/sessions/{id}/kick", a.Kick)
	mux.HandleFunc("GET /v1/worlds/{world}/sessions:export", a.ExportData)
	mux.HandleFunc("POST /v1/worlds/{world}/sessions:import", a.ImportData)
	mux.HandleFunc("PATCH /v1/worlds/{world}/players/{player}/data", a.WritePlayerData)
	mux.HandleFunc("GET /v1/worlds/{world}/bans", a.Bans)
	mux.HandleFunc("POST /v1/worlds/{world}/bans", a.Ban)
	mux.HandleFunc("DELETE /v1/worlds/{world}/bans/{player}", a.Unban)
	mux.HandleFunc("GET /v1/status", a.Status)
	mux.HandleFunc("POST /v1/cluster/join", a.Join)
	mux.HandleFunc("DELETE /v1/cluster/nodes/{id}", a.RemoveNode)
	mux.HandleFunc("POST /v1/cluster/transfer-leadership", a.TransferLeadership)
	mux.HandleFunc("POST /v1/cluster/snapshot", a.Snapshot)
	mux.HandleFunc("GET /v1/node/archive", a.ArchiveStatus)
	mux.HandleFunc("POST /v1/node/archive:check", a.CheckArchive)
	mux.HandleFunc("GET "+wire.PathBackup, a.Backup)
	mux.HandleFunc("GET "+wire.PathShards, a.Shards)
	mux.HandleFunc("POST "+wire.PathShards, a.CreateShard)
	mux.HandleFunc("DELETE "+wire.PathShards+"/{id}", a.RemoveShard)
	mux.HandleFunc("POST "+wire.PathShardWorlds, a.PlaceWorld)
	mux.HandleFunc("POST "+wire.PathShards+"/{id}/replace", a.ReplaceVoter)
	mux.HandleFunc("DELETE "+wire.PathShardNodes+"/{id}", a.RemoveMapNode)
	mux.HandleFunc("POST "+wire.PathShardNodes, a.AddMapNode)
	mux.HandleFunc("POST "+wire.PathShardNodesDown, a.MarkNodesDown)
	mux.HandleFunc("POST /v1/cluster/worlds/{world}/move", a.MoveWorld)
	mux.HandleFunc("GET /healthz", a.Healthz)
	mux.HandleFunc("GET /readyz", a.Readyz)
}
