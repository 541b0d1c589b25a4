package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/gsd-dev/gsd/wire"
)

// ErrDataNotSent reports a data write that did not reach the server: the
// Play was between connections or the write failed. Nothing changed.
var ErrDataNotSent = errors.New("gsd/client: data message not sent")

// WriteData writes the player's own critical data over the play
// connection (a data message): each key of data is set, a null value
// (wire.Value{}) deletes its key, the others stay. The world's rules say
// which keys a player may write (player_data.player_writable); one other
// key refuses the whole write (*Error, code forbidden), as does an
// expectVersion (when not 0) that is not the player's data version
// (data_conflict). It returns the player's data after the write and its
// version.
//
// A data message is not sent again after a resume: a write whose
// connection ended before the answer returns an *Error with code
// outcome_unknown, and may or may not have applied (read Data after the
// next welcome, or write again with an expected version).
func (p *Play) WriteData(ctx context.Context, data map[string]wire.Value, expectVersion uint64) (map[string]wire.Value, uint64, error) {
	if len(data) == 0 {
		return nil, 0, errors.New("gsd/client: a data write names at least one key")
	}
	done := make(chan wire.DataAnswer, 1)
	p.mu.Lock()
	if p.err != nil {
		p.mu.Unlock()
		return nil, 0, p.err
	}
	conn := p.conn
	if conn == nil {
		p.mu.Unlock()
		return nil, 0, fmt.Errorf("%w: not connected", ErrDataNotSent)
	}
	p.dataSeq++
	seq := p.dataSeq
	if p.pendingData == nil {
		p.pendingData = make(map[uint64]chan wire.DataAnswer)
	}
	p.pendingData[seq] = done
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.pendingData, seq)
		p.mu.Unlock()
	}()
	msg := wire.ClientMsg{Type: wire.TypeData, Seq: seq, Data: data, ExpectVersion: expectVersion}
	if err := p.write(ctx, conn, msg); err != nil {
		return nil, 0, fmt.Errorf("%w: %v", ErrDataNotSent, err)
	}
	select {
	case a := <-done:
		if a.Code != "" {
			return nil, 0, &Error{Status: a.Status, Code: a.Code, Message: a.Error}
		}
		return a.Data, a.DataVersion, nil
	case <-p.done:
		return nil, 0, p.err
	case <-ctx.Done():
		return nil, 0, ctx.Err()
	}
}

// answerData hands a data message's answer to its WriteData.
func (p *Play) answerData(m *wire.ServerMsg) {
	p.mu.Lock()
	done := p.pendingData[m.Seq]
	p.mu.Unlock()
	if done == nil {
		return // its WriteData gave up
	}
	select {
	case done <- wire.DataAnswer{Type: m.Type, Seq: m.Seq, Data: m.Data, DataVersion: m.DataVersion, Status: m.Status, Code: m.Code, Error: m.Error}:
	default:
	}
}

// WritePlayerData merges data into one player's critical data in world,
// as a game server (a server or admin token, or the cluster secret): each
// key is set, a null value (wire.Value{}) deletes its key, the others
// stay; any key, whether or not the player may write it. With
// expectVersion not 0 the write applies only while the player's data
// version is that one (*Error data_conflict otherwise). It returns the
// player's data after the write and its version. Retried only when it
// surely did not apply, as a rules change.
func (c *Client) WritePlayerData(ctx context.Context, world, player string, data map[string]wire.Value, expectVersion uint64) (wire.PlayerData, error) {
	var out wire.PlayerData
	body := wire.PlayerDataWrite{Data: data, ExpectVersion: expectVersion}
	err := c.do(ctx, &request{method: http.MethodPatch, path: path("worlds", world, "players", player, "data"), body: body, mode: retryUnapplied, write: true}, &out)
	return out, err
}

// dropPendingData answers every data write in flight when a connection
// ends: its message is not sent again, and whether it applied is unknown.
func (p *Play) dropPendingData() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for seq, done := range p.pendingData {
		select {
		case done <- wire.DataAnswer{Type: wire.TypeData, Seq: seq, Status: http.StatusServiceUnavailable, Code: CodeOutcomeUnknown,
			Error: "gsd/client: the connection ended before the data write's answer"}:
		default:
		}
	}
}
