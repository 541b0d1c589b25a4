package client

import (
	"context"
	"net/http"

	"github.com/gsd-dev/gsd/wire"
)

// SessionInfo is a player's session as the session admin API shows it
// (docs/API.md, "Sessions").
type SessionInfo = wire.SessionInfo

// Ban is one banned player of a world.
type Ban = wire.Ban

// PlayerDataFormat is the format name of a PlayerDataFile.
const PlayerDataFormat = wire.PlayerDataFormat

// PlayerDataFile is one world's players' critical data, as exported and
// imported (docs/API.md).
type PlayerDataFile = wire.PlayerDataFile

// PlayerDataRecord is one player's data in a PlayerDataFile.
type PlayerDataRecord = wire.PlayerDataRecord

// Sessions lists a world's open sessions: who is connected, their last
// ack and node (a stale read of the answering node).
func (c *Client) Sessions(ctx context.Context, world string) ([]SessionInfo, error) {
	var out wire.Presence
	err := c.do(ctx, &request{method: http.MethodGet, path: path("worlds", world, "sessions")}, &out)
	return out.Sessions, err
}

// Kick closes a session wherever its connection is, with a reason ("":
// the server's default). The player may start a new session unless banned.
func (c *Client) Kick(ctx context.Context, world, session, reason string) (SessionInfo, error) {
	var out SessionInfo
	body := wire.Ban{Reason: reason}
	err := c.do(ctx, &request{method: http.MethodPost, path: path("worlds", world, "sessions", session, "kick"), body: body, write: true}, &out)
	return out, err
}

// Ban bans a player from a world (their session is kicked; hello, resume
// and actions are refused with 403 banned) until Unban.
func (c *Client) Ban(ctx context.Context, world, player, reason string) error {
	body := Ban{Player: player, Reason: reason}
	return c.do(ctx, &request{method: http.MethodPost, path: path("worlds", world, "bans"), body: body, write: true}, nil)
}

// Unban lifts a player's ban.
func (c *Client) Unban(ctx context.Context, world, player string) error {
	return c.do(ctx, &request{method: http.MethodDelete, path: path("worlds", world, "bans", player), write: true}, nil)
}

// Bans lists a world's banned players.
func (c *Client) Bans(ctx context.Context, world string) ([]Ban, error) {
	var out wire.Bans
	err := c.do(ctx, &request{method: http.MethodGet, path: path("worlds", world, "bans")}, &out)
	return out.Bans, err
}

// ExportPlayerData returns every player's critical data in a world.
func (c *Client) ExportPlayerData(ctx context.Context, world string) (PlayerDataFile, error) {
	var out PlayerDataFile
	err := c.do(ctx, &request{method: http.MethodGet, path: path("worlds", world, "sessions:export")}, &out)
	return out, err
}

// ImportPlayerData sets the data of every player in f in world (the file's
// own world may differ) and returns how many players it imported. Import is
// idempotent, so it is retried like an action.
func (c *Client) ImportPlayerData(ctx context.Context, world string, f PlayerDataFile) (int, error) {
	out, err := c.ImportPlayerDataAnswer(ctx, world, f)
	return out.Imported, err
}

// ImportPlayerDataAnswer is ImportPlayerData with the route's whole
// answer: also the players whose data version after the import is below
// the file's (Behind).
func (c *Client) ImportPlayerDataAnswer(ctx context.Context, world string, f PlayerDataFile) (wire.ImportAnswer, error) {
	var out wire.ImportAnswer
	err := c.do(ctx, &request{method: http.MethodPost, path: path("worlds", world, "sessions:import"), body: f, write: true}, &out)
	return out, err
}
