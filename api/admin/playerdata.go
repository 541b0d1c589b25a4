package admin

import (
	"fmt"
	"net/http"
	"net/url"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
)

// WritePlayerData handles PATCH /v1/worlds/{world}/players/{player}/data
// with a wire.PlayerDataWrite: a game server (or admin) merges keys into
// one player's critical data, who needs no session. It runs on the
// world's leader as one replicated command (fsm.CmdSessionData addressed
// by player), so the write raises the player's data version, which the
// answer carries, and reaches the pg mirror and exports like any change.
func (a *API) WritePlayerData(w http.ResponseWriter, r *http.Request) {
	var req wire.PlayerDataWrite
	body, ok := a.AdminBody(w, r, &req)
	if !ok {
		return
	}
	world, player := r.PathValue("world"), r.PathValue("player")
	c, err := playerDataCmd(world, player, req)
	if err != nil {
		a.WriteError(w, err, true)
		return
	}
	path := edge.InternalWorldPath(world, "/players/"+url.PathEscape(player)+"/data")
	a.OnLeader(w, r, world, edge.KindWrite, path, body, func(g edge.Group) error {
		ctx, cancel := a.RequestContext(r)
		defer cancel()
		info, err := g.Session(ctx, fsm.CmdSessionData, c)
		if err != nil {
			return err
		}
		data := info.Data
		if data == nil {
			data = map[string]fsm.Value{}
		}
		a.WriteJSON(w, http.StatusOK, wire.PlayerData{World: world, Player: player, Data: data, DataVersion: info.DataVersion})
		return nil
	})
}

// playerDataCmd checks a data write and builds its command, keys sorted
// so that the replicated bytes do not depend on map order.
func playerDataCmd(world, player string, req wire.PlayerDataWrite) (*fsm.SessionCmd, error) {
	if err := edge.CheckName("player", player); err != nil {
		return nil, err
	}
	if len(req.Data) == 0 {
		return nil, fmt.Errorf("%w: a data write names at least one key (null deletes it)", fsm.ErrMalformed)
	}
	if len(req.Data) > fsm.MaxSessionData {
		return nil, fmt.Errorf("%w: more than %d data keys", fsm.ErrMalformed, fsm.MaxSessionData)
	}
	return &fsm.SessionCmd{World: world, Player: player, Seq: req.ExpectVersion, Data: edge.DataItems(req.Data)}, nil
}
