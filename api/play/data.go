package play

import (
	"context"
	"fmt"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
)

// writeData runs a data message: the player's write of their own critical
// data, through their session, on the world's leader. The FSM takes it
// only for keys the world's rules make player-writable (rules
// player_data.player_writable), all or none, so a refused key leaves the
// data as it was. It is answered with a data message with the seq: the
// data after the write and its version, or the error (status, code); the
// connection stays either way.
func (c *playConn) writeData(msg wire.ClientMsg) {
	err := c.dataCmdError(msg)
	var info fsm.SessionInfo
	if err == nil {
		err = c.s.CheckBan(c.world, c.player)
	}
	if err == nil {
		err = c.s.Admit(nil, c.player, "play")
	}
	if err == nil {
		ctx, cancel := context.WithTimeout(c.ctx, c.s.Config().RequestTimeout)
		info, err = c.s.Session(ctx, fsm.CmdSessionData, &fsm.SessionCmd{World: c.world, ID: c.session, Player: c.player,
			Seq: msg.ExpectVersion, Data: edge.DataItems(msg.Data)}, c.token)
		cancel()
	}
	ans := wire.DataAnswer{Type: wire.TypeData, Seq: msg.Seq, Data: info.Data, DataVersion: info.DataVersion}
	if err != nil {
		var body edge.ErrorBody
		ans.Status, body = c.s.ErrorFor(err, true)
		ans.Code, ans.Error = body.Code, body.Error
	}
	c.send(ans)
}

// dataCmdError checks a data message before anything is proposed: the
// player's own data (a message that names a player names this one), one
// to MaxSessionData keys, and nothing of the other messages' keys.
func (c *playConn) dataCmdError(msg wire.ClientMsg) error {
	switch {
	case msg.Player != "" && msg.Player != c.player:
		return fmt.Errorf("%w: the connection is %q's, the message names %q: a player writes only their own data", edge.ErrForbidden, c.player, msg.Player)
	case len(msg.Data) == 0:
		return fmt.Errorf("%w: a data message names at least one key (null deletes it)", fsm.ErrMalformed)
	case len(msg.Data) > fsm.MaxSessionData:
		return fmt.Errorf("%w: more than %d data keys", fsm.ErrMalformed, fsm.MaxSessionData)
	case msg.Action != nil || msg.Token != "" || msg.Session != "":
		return fmt.Errorf("%w: a data message carries data, seq, player and expect_version only", fsm.ErrMalformed)
	}
	return nil
}
