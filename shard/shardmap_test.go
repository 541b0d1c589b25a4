package shard

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"
)

const goodMap = `{
  "membership": 0,
  "nodes": {
    "n1": {"raft": "10.0.0.1:7071", "http": "10.0.0.1:7070"},
    "n2": {"raft": "10.0.0.2:7071", "http": "10.0.0.2:7070"},
    "n3": {"raft": "10.0.0.3:7071", "http": "https://10.0.0.3:7070"}
  },
  "shards": [
    {"id": 2, "voters": ["n2", "n3", "n1"]},
    {"id": 1, "voters": ["n1", "n2", "n3"]},
    {"id": 3, "voters": ["n1"]}
  ],
  "worlds": {"lobby": 3}
}`

func TestParseMap(t *testing.T) {
	m, err := ParseMap([]byte(goodMap))
	require.NoError(t, err)
	require.Equal(t, []uint64{1, 2, 3}, []uint64{m.Shards[0].ID, m.Shards[1].ID, m.Shards[2].ID}, "sorted by id")
	require.Equal(t, uint64(3), m.ShardOf("lobby"), "a listed world goes where the map says")
	require.Equal(t, []uint64{1, 2, 3}, m.ShardsOf("n1"))
	require.Equal(t, []uint64{1, 2}, m.ShardsOf("n3"))
	require.Empty(t, m.ShardsOf("n9"))
	voters, err := m.Voters(2)
	require.NoError(t, err)
	require.Equal(t, []raft.Server{
		{Suffrage: raft.Voter, ID: "n2", Address: "10.0.0.2:7071"},
		{Suffrage: raft.Voter, ID: "n3", Address: "10.0.0.3:7071"},
		{Suffrage: raft.Voter, ID: "n1", Address: "10.0.0.1:7071"},
	}, voters)
	_, err = m.Voters(7)
	require.ErrorIs(t, err, ErrUnknownGroup)
	_, ok := m.Shard(7)
	require.False(t, ok)
}

func TestParseMapRejects(t *testing.T) {
	nodes := `"nodes": {"n1": {"raft": "10.0.0.1:7071", "http": "10.0.0.1:7070"}}`
	for name, in := range map[string]string{
		"not json":          `{`,
		"unknown field":     `{` + nodes + `, "shards": [{"id": 1, "voters": ["n1"]}], "shard": 2}`,
		"no shards":         `{` + nodes + `}`,
		"shard twice":       `{` + nodes + `, "shards": [{"id": 1, "voters": ["n1"]}, {"id": 1, "voters": ["n1"]}]}`,
		"no voters":         `{` + nodes + `, "shards": [{"id": 1, "voters": []}]}`,
		"unknown voter":     `{` + nodes + `, "shards": [{"id": 1, "voters": ["n2"]}]}`,
		"voter twice":       `{` + nodes + `, "shards": [{"id": 1, "voters": ["n1", "n1"]}]}`,
		"world on no shard": `{` + nodes + `, "shards": [{"id": 1, "voters": ["n1"]}], "worlds": {"w": 2}}`,
		"empty world name":  `{` + nodes + `, "shards": [{"id": 1, "voters": ["n1"]}], "worlds": {"": 1}}`,
		"bad raft address":  `{"nodes": {"n1": {"raft": "nowhere", "http": "10.0.0.1:7070"}}, "shards": [{"id": 1, "voters": ["n1"]}]}`,
		"missing http":      `{"nodes": {"n1": {"raft": "10.0.0.1:7071"}}, "shards": [{"id": 1, "voters": ["n1"]}]}`,
		"http url scheme":   `{"nodes": {"n1": {"raft": "10.0.0.1:7071", "http": "ftp://10.0.0.1:7070"}}, "shards": [{"id": 1, "voters": ["n1"]}]}`,
		"http url no port":  `{"nodes": {"n1": {"raft": "10.0.0.1:7071", "http": "https://10.0.0.1"}}, "shards": [{"id": 1, "voters": ["n1"]}]}`,
		"http url bad":      `{"nodes": {"n1": {"raft": "10.0.0.1:7071", "http": "https://%zz:1"}}, "shards": [{"id": 1, "voters": ["n1"]}]}`,
		"empty node id":     `{"nodes": {"": {"raft": "10.0.0.1:7071", "http": "10.0.0.1:7070"}}, "shards": [{"id": 1, "voters": [""]}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ParseMap([]byte(in))
			require.ErrorIs(t, err, ErrBadMap)
		})
	}
}

// Unlisted worlds hash over the shards: the same world always lands on
// the same shard, on every node, and worlds spread over all shards.
func TestShardOfHashesUnlistedWorlds(t *testing.T) {
	m, err := ParseMap([]byte(goodMap))
	require.NoError(t, err)
	again, err := ParseMap([]byte(goodMap))
	require.NoError(t, err)
	count := map[uint64]int{}
	for i := range 3000 {
		w := "world-" + strconv.Itoa(i)
		g := m.ShardOf(w)
		require.Equal(t, g, again.ShardOf(w))
		count[g]++
	}
	require.Len(t, count, 3)
	for g, n := range count {
		require.Greater(t, n, 800, "shard %d got %d of 3000 worlds", g, n)
	}
}

func TestLoadMap(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shards.json")
	_, err := LoadMap(path)
	require.ErrorContains(t, err, "shard map")
	require.NoError(t, os.WriteFile(path, []byte(goodMap), 0o600))
	m, err := LoadMap(path)
	require.NoError(t, err)
	require.Len(t, m.Shards, 3)
	require.NoError(t, os.WriteFile(path, []byte(`{}`), 0o600))
	_, err = LoadMap(path)
	require.ErrorIs(t, err, ErrBadMap)
	require.ErrorContains(t, err, path)
}
