package admin

import (
	"fmt"
	"net/http"
	"net/url"
	"sort"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
)

// The session admin API: presence, kick, ban, and the export and import of
// players' critical data (docs/API.md, "Sessions"). Writes run on the
// leader (a follower forwards them); reads answer from this node's applied
// state.

// PlayerDataFormat names the export format; an import accepts it or none.
const PlayerDataFormat = wire.PlayerDataFormat

// DefaultKickReason is the reason of a kick that gives none.
const DefaultKickReason = "kicked by an admin"

// Presence handles GET /v1/worlds/{world}/sessions: the world's open
// sessions (player, last ack, node holding the connection), from this
// node's applied state.
func (a *API) Presence(w http.ResponseWriter, r *http.Request) {
	world := r.PathValue("world")
	all, err := a.Backend().Sessions(world)
	if err != nil {
		a.WriteError(w, err, false)
		return
	}
	out := wire.Presence{World: world, Sessions: make([]wire.SessionInfo, 0, len(all))}
	for _, i := range all {
		j := edge.ToSessionJSON(i)
		j.Data, j.DataVersion = nil, 0 // presence is who is here, not what they own
		out.Sessions = append(out.Sessions, j)
	}
	a.WriteJSON(w, http.StatusOK, out)
}

// Kick handles POST /v1/worlds/{world}/sessions/{id}/kick: the session is
// marked kicked; the node holding its connection closes it with 4403 and
// the reason, and it cannot be resumed.
func (a *API) Kick(w http.ResponseWriter, r *http.Request) {
	var req wire.Ban
	body, ok := a.AdminBody(w, r, &req)
	if !ok {
		return
	}
	path := edge.InternalWorldPath(r.PathValue("world"), "/sessions/"+url.PathEscape(r.PathValue("id"))+"/kick")
	a.adminSession(w, r, path, body, fsm.CmdSessionKick, func() (*fsm.SessionCmd, error) {
		if req.Player != "" {
			return nil, fmt.Errorf("%w: a kick names the session in the path, not a player", fsm.ErrMalformed)
		}
		if req.Reason == "" {
			req.Reason = DefaultKickReason
		}
		return &fsm.SessionCmd{World: r.PathValue("world"), ID: r.PathValue("id"), Reason: req.Reason}, nil
	})
}

// Ban handles POST /v1/worlds/{world}/bans {"player","reason"}: the player
// can no longer open or resume a session or act in the world, and their
// session is kicked.
func (a *API) Ban(w http.ResponseWriter, r *http.Request) {
	var req wire.Ban
	body, ok := a.AdminBody(w, r, &req)
	if !ok {
		return
	}
	a.adminSession(w, r, edge.InternalWorldPath(r.PathValue("world"), "/bans"), body, fsm.CmdSessionBan, func() (*fsm.SessionCmd, error) {
		return &fsm.SessionCmd{World: r.PathValue("world"), Player: req.Player, Reason: req.Reason}, nil
	})
}

// Unban handles DELETE /v1/worlds/{world}/bans/{player}.
func (a *API) Unban(w http.ResponseWriter, r *http.Request) {
	path := edge.InternalWorldPath(r.PathValue("world"), "/bans/"+url.PathEscape(r.PathValue("player")))
	a.adminSession(w, r, path, nil, fsm.CmdSessionUnban, func() (*fsm.SessionCmd, error) {
		return &fsm.SessionCmd{World: r.PathValue("world"), Player: r.PathValue("player")}, nil
	})
}

// Bans handles GET /v1/worlds/{world}/bans, from this node's applied state.
func (a *API) Bans(w http.ResponseWriter, r *http.Request) {
	world := r.PathValue("world")
	all, err := a.Backend().Bans(world)
	if err != nil {
		a.WriteError(w, err, false)
		return
	}
	out := wire.Bans{World: world, Bans: make([]wire.Ban, 0, len(all))}
	for _, b := range all {
		out.Bans = append(out.Bans, wire.Ban{Player: b.Player, Reason: b.Reason})
	}
	a.WriteJSON(w, http.StatusOK, out)
}

// adminSession runs an admin session command on the world's leader (cmd
// builds it there, or refuses the request; path is its internal call's)
// and answers with the session it left.
func (a *API) adminSession(w http.ResponseWriter, r *http.Request, path string, body []byte, kind fsm.CmdKind, cmd func() (*fsm.SessionCmd, error)) {
	a.OnLeader(w, r, r.PathValue("world"), edge.KindWrite, path, body, func(g edge.Group) error {
		c, err := cmd()
		if err != nil {
			return err
		}
		ctx, cancel := a.RequestContext(r)
		defer cancel()
		info, err := g.Session(ctx, kind, c)
		if err != nil {
			return err
		}
		a.WriteJSON(w, http.StatusOK, edge.ToSessionJSON(info))
		return nil
	})
}

// ExportData handles GET /v1/worlds/{world}/sessions:export. It answers on
// the leader (a follower forwards), so the export holds every committed
// import and data change.
func (a *API) ExportData(w http.ResponseWriter, r *http.Request) {
	world := r.PathValue("world")
	a.OnLeader(w, r, world, edge.KindRead, edge.InternalWorldPath(world, "/sessions:export"), nil, func(g edge.Group) error {
		out, err := exportPlayers(g, world)
		if err != nil {
			return err
		}
		a.WriteJSON(w, http.StatusOK, out)
		return nil
	})
}

// playerRecords is a Group that reads players' data with its versions
// (*store.Store does).
type playerRecords interface {
	PlayerRecords(world string) ([]fsm.PlayerRecord, error)
}

// exportPlayers returns world's players' data file from g, with each
// player's data version when g reads them.
func exportPlayers(g edge.Group, world string) (wire.PlayerDataFile, error) {
	out := wire.PlayerDataFile{Format: PlayerDataFormat, World: world}
	if pr, ok := g.(playerRecords); ok {
		recs, err := pr.PlayerRecords(world)
		if err != nil {
			return out, err
		}
		out.Players = make([]wire.PlayerDataRecord, 0, len(recs))
		for _, r := range recs { // sorted by player
			if len(r.Data) > 0 { // a player whose data was emptied has none to export
				out.Players = append(out.Players, wire.PlayerDataRecord{Player: r.Player, Data: r.Data, DataVersion: r.Version})
			}
		}
		return out, nil
	}
	all, err := g.PlayerData(world)
	if err != nil {
		return out, err
	}
	out.Players = make([]wire.PlayerDataRecord, 0, len(all))
	for p, d := range all {
		out.Players = append(out.Players, wire.PlayerDataRecord{Player: p, Data: d})
	}
	sort.Slice(out.Players, func(i, j int) bool { return out.Players[i].Player < out.Players[j].Player })
	return out, nil
}

// ImportData handles POST /v1/worlds/{world}/sessions:import with a
// wire.PlayerDataFile: each listed player's data becomes exactly the file's
// (players not listed keep theirs), so importing a file twice is the same
// as once. The file's world may differ from the path's: that moves data
// between worlds. Each player is one replicated command; a failure stops
// the import and says how many were imported, and a retry is safe.
func (a *API) ImportData(w http.ResponseWriter, r *http.Request) {
	body, err := edge.ReadBody(w, r, a.Config().MaxBatchBodyBytes)
	if err != nil {
		a.WriteError(w, err, true)
		return
	}
	var f wire.PlayerDataFile
	if err := edge.DecodeStrict(body, &f); err != nil {
		a.WriteError(w, err, true)
		return
	}
	if f.Format != "" && f.Format != PlayerDataFormat {
		a.WriteError(w, fmt.Errorf("%w: format %q, want %q", fsm.ErrMalformed, f.Format, PlayerDataFormat), true)
		return
	}
	seen := make(map[string]bool, len(f.Players))
	for i, p := range f.Players {
		if err := edge.CheckName("player", p.Player); err != nil {
			a.WriteError(w, fmt.Errorf("player %d: %w", i, err), true)
			return
		}
		if seen[p.Player] {
			a.WriteError(w, fmt.Errorf("%w: player %s listed twice", fsm.ErrMalformed, p.Player), true)
			return
		}
		seen[p.Player] = true
	}
	world := r.PathValue("world")
	a.OnLeader(w, r, world, edge.KindWrite, edge.InternalWorldPath(world, "/sessions:import"), body, func(g edge.Group) error {
		ctx, cancel := a.RequestContext(r)
		defer cancel()
		var behind []string
		for i, p := range f.Players {
			c := &fsm.SessionCmd{World: world, Player: p.Player, Data: make([]fsm.DataItem, 0, len(p.Data))}
			keys := make([]string, 0, len(p.Data))
			for k := range p.Data {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				c.Data = append(c.Data, fsm.DataItem{Key: k, Value: p.Data[k]})
			}
			info, err := g.Session(ctx, fsm.CmdSessionImport, c)
			if err != nil {
				err = fmt.Errorf("player %s (%d imported before it): %w", p.Player, i, err)
				if i > 0 {
					// Some imported: answered here, never sent on.
					a.WriteError(w, err, true)
					return nil
				}
				return err // nothing imported: sent on if leadership moved
			}
			if info.DataVersion < p.DataVersion {
				behind = append(behind, p.Player)
			}
		}
		a.WriteJSON(w, http.StatusOK, wire.ImportAnswer{World: world, Imported: len(f.Players), Behind: behind})
		return nil
	})
}
