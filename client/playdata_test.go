package client

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/api"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

func TestPlayWriteDataAndTheGameServersWrite(t *testing.T) {
	forEachEncoding(t, testPlayWriteDataAndTheGameServersWrite)
}

func testPlayWriteDataAndTheGameServersWrite(t *testing.T, enc string) {
	n := startPlayNode(t)
	c := New([]string{n.url}, WithBackoff(5*time.Millisecond, 50*time.Millisecond))
	defer c.Close()
	ctx := playCtx(t)
	require.NoError(t, c.CreateWorld(ctx, "arena", wire.Rules{PlayerData: &wire.PlayerDataRule{PlayerWritable: []string{"loadout"}}}))
	all, err := c.Worlds(ctx)
	require.NoError(t, err)
	require.Equal(t, &wire.PlayerDataRule{PlayerWritable: []string{"loadout"}}, all[0].Rules.PlayerData, "listings carry the key")
	_, err = c.UpdateRules(ctx, "arena", json.RawMessage(`{"player_data":{"player_writable":["loadout","settings"]}}`), 0)
	require.NoError(t, err)

	// The game server sets a key the player may not write.
	d, err := c.WritePlayerData(ctx, "arena", "ann", map[string]wire.Value{"gold": wire.Int(40)}, 0)
	require.NoError(t, err)
	require.Equal(t, map[string]wire.Value{"gold": wire.Int(40)}, d.Data)
	require.Positive(t, d.DataVersion)
	_, err = c.WritePlayerData(ctx, "arena", "ann", map[string]wire.Value{"gold": wire.Int(0)}, d.DataVersion+1)
	require.Equal(t, fsm.CodeDataConflict, Code(err))

	p, err := c.Play(ctx, "arena", PlayOptions{Encoding: enc, Player: "ann"})
	require.NoError(t, err)
	defer p.Close()
	require.Equal(t, map[string]wire.Value{"gold": wire.Int(40)}, p.Data())
	data, v, err := p.WriteData(ctx, map[string]wire.Value{"loadout": wire.String("sniper"), "settings": wire.Int(3)}, d.DataVersion)
	require.NoError(t, err)
	require.Equal(t, map[string]wire.Value{"gold": wire.Int(40), "loadout": wire.String("sniper"), "settings": wire.Int(3)}, data)
	require.Greater(t, v, d.DataVersion)

	_, _, err = p.WriteData(ctx, map[string]wire.Value{"loadout": wire.String("rail"), "gold": wire.Int(1_000_000)}, 0)
	require.Equal(t, api.CodeForbidden, Code(err))
	_, _, err = p.WriteData(ctx, map[string]wire.Value{"loadout": wire.String("rail")}, d.DataVersion)
	require.Equal(t, fsm.CodeDataConflict, Code(err), "the version moved on")
	_, _, err = p.WriteData(ctx, nil, 0)
	require.Error(t, err)

	data, v2, err := p.WriteData(ctx, map[string]wire.Value{"settings": {}}, v)
	require.NoError(t, err)
	require.Equal(t, map[string]wire.Value{"gold": wire.Int(40), "loadout": wire.String("sniper")}, data)
	require.Greater(t, v2, v)
	f, err := c.ExportPlayerData(ctx, "arena")
	require.NoError(t, err)
	require.Equal(t, []wire.PlayerDataRecord{{Player: "ann", Data: data, DataVersion: v2}}, f.Players)
}

// A data write whose connection ends before its answer is answered
// outcome_unknown (it is not sent again); one without a write in flight
// is not disturbed.
func TestDataWritesInFlightWhenTheConnectionEndsAreOutcomeUnknown(t *testing.T) {
	done := make(chan wire.DataAnswer, 1)
	p := &Play{pendingData: map[uint64]chan wire.DataAnswer{3: done}}
	p.dropPendingData()
	a := <-done
	require.Equal(t, CodeOutcomeUnknown, a.Code)
	require.Equal(t, uint64(3), a.Seq)
	p.dropPendingData() // the channel is full: nothing blocks
	(&Play{}).dropPendingData()
}
