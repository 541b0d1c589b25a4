package meta

import (
	"testing"

	"github.com/gsd-dev/gsd/shard"
	"github.com/stretchr/testify/require"
)

func TestCommandRoundTripsThroughItsEncoding(t *testing.T) {
	for _, c := range []Command{
		{Op: OpAddNode, Node: "n1", Raft: "10.0.0.1:7000", HTTP: "10.0.0.1:8080", Region: "eu"},
		{Op: OpAddNode, Node: "n2", Raft: "10.0.0.2:7000", HTTP: "https://n2.example:8443"},
		{Op: OpRemoveNode, Node: "n1"},
		{Op: OpCreateShard, Shard: 3, Voters: []string{"n1", "n2", "n3"}},
		{Op: OpCreateShard, Shard: 0, Replicas: 3},
		{Op: OpRemoveShard, Shard: 3},
		{Op: OpAssignWorld, World: "w", Shard: 3},
		{Op: OpAssignWorld, World: "w", Shard: 3, Expect: ptr(0)},
		{Op: OpAssignWorld, World: "w", Shard: 0, Expect: ptr(7)},
		{Op: OpPlaceWorld, World: "w"},
		{Op: OpReport, Node: "n1", Leads: map[uint64]uint64{0: 4, shard.MetaGroup: 2}, Load: map[uint64]Load{3: {Players: 10, Events: 5}}},
	} {
		b, err := c.Encode()
		require.NoError(t, err, "%+v", c)
		require.Equal(t, commandVersion, b[0])
		got, err := DecodeCommand(b)
		require.NoError(t, err)
		require.Equal(t, c, got)
	}
}

func TestBadCommandsAreRefusedWithAClearError(t *testing.T) {
	for name, c := range map[string]Command{
		"unknown op":              {Op: "grow"},
		"no op":                   {},
		"add node without id":     {Op: OpAddNode, Raft: "h:1", HTTP: "h:2"},
		"add node bad raft":       {Op: OpAddNode, Node: "n", Raft: "nope", HTTP: "h:2"},
		"add node bad http":       {Op: OpAddNode, Node: "n", Raft: "h:1", HTTP: "ftp://h:2"},
		"add node with a shard":   {Op: OpAddNode, Node: "n", Raft: "h:1", HTTP: "h:2", Shard: 4},
		"remove node without id":  {Op: OpRemoveNode},
		"create the meta group":   {Op: OpCreateShard, Shard: shard.MetaGroup, Replicas: 3},
		"voters and replicas":     {Op: OpCreateShard, Shard: 1, Replicas: 3, Voters: []string{"a"}},
		"neither":                 {Op: OpCreateShard, Shard: 1},
		"too many replicas":       {Op: OpCreateShard, Shard: 1, Replicas: maxReplicas + 1},
		"negative replicas":       {Op: OpCreateShard, Shard: 1, Replicas: -1, Voters: []string{"a"}},
		"voter twice":             {Op: OpCreateShard, Shard: 1, Voters: []string{"a", "a"}},
		"empty voter":             {Op: OpCreateShard, Shard: 1, Voters: []string{""}},
		"too many voters":         {Op: OpCreateShard, Shard: 1, Voters: []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"}},
		"remove shard with world": {Op: OpRemoveShard, Shard: 1, World: "w"},
		"assign no world":         {Op: OpAssignWorld, Shard: 1},
		"place no world":          {Op: OpPlaceWorld},
		"place with a shard":      {Op: OpPlaceWorld, World: "w", Shard: 2},
		"report without node":     {Op: OpReport, Leads: map[uint64]uint64{1: 1}},
		"report with voters":      {Op: OpReport, Node: "n", Voters: []string{"a"}},
	} {
		_, err := c.Encode()
		require.ErrorIs(t, err, ErrBadCommand, name)
		require.Contains(t, err.Error(), "gsd/meta: bad command", name)
	}
}

func TestDecodeCommandRefusesBadBytes(t *testing.T) {
	good, err := Command{Op: OpPlaceWorld, World: "w"}.Encode()
	require.NoError(t, err)
	for name, b := range map[string][]byte{
		"empty":         nil,
		"version 2":     append([]byte{2}, good[1:]...),
		"not json":      append([]byte{commandVersion}, "{op"...),
		"unknown field": append([]byte{commandVersion}, `{"op":"place_world","world":"w","colour":"red"}`...),
		"trailing":      append(append([]byte{}, good...), `{}`...),
		"invalid":       append([]byte{commandVersion}, `{"op":"place_world"}`...),
		"wrong type":    append([]byte{commandVersion}, `{"op":"assign_world","world":"w","shard":-1}`...),
	} {
		_, err := DecodeCommand(b)
		require.ErrorIs(t, err, ErrBadCommand, name)
	}
}

// No input makes the decoder panic, and whatever it accepts encodes back
// to a command that decodes the same.
func FuzzDecodeCommand(f *testing.F) {
	for _, c := range []Command{
		{Op: OpAddNode, Node: "n1", Raft: "h:1", HTTP: "h:2"},
		{Op: OpCreateShard, Shard: 1, Replicas: 3},
		{Op: OpReport, Node: "n", Leads: map[uint64]uint64{1: 2}},
		{Op: OpAssignWorld, World: "w", Shard: 1, Expect: ptr(2)},
	} {
		b, err := c.Encode()
		require.NoError(f, err)
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{commandVersion, '{', '}'})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeCommand(b)
		if err != nil {
			require.ErrorIs(t, err, ErrBadCommand)
			return
		}
		again, err := c.Encode()
		require.NoError(t, err)
		c2, err := DecodeCommand(again)
		require.NoError(t, err)
		require.Equal(t, c, c2)
	})
}

func TestSeedCommandsCarryAValidMap(t *testing.T) {
	seed := &shard.Map{Nodes: map[string]shard.MapNode{"n1": {Raft: "h:1", HTTP: "h:2"}},
		Shards: []shard.MapShard{{ID: 2, Voters: []string{"n1"}}, {ID: 1, Voters: []string{"n1"}}}, Worlds: map[string]uint64{"w": 2}}
	b, err := Command{Op: OpSeed, Seed: seed}.Encode()
	require.NoError(t, err)
	require.Equal(t, uint64(2), seed.Shards[0].ID, "encoding leaves the caller's map alone")
	c, err := DecodeCommand(b)
	require.NoError(t, err)
	require.Equal(t, seed.Worlds, c.Seed.Worlds)
	_, err = Command{Op: OpSeed}.Encode()
	require.ErrorIs(t, err, ErrBadCommand)
	_, err = Command{Op: OpSeed, Seed: &shard.Map{}}.Encode()
	require.ErrorIs(t, err, ErrBadCommand, "no shards")
	_, err = Command{Op: OpPlaceWorld, World: "w", Seed: seed}.Encode()
	require.ErrorIs(t, err, ErrBadCommand)
}
