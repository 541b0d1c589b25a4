package wire

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestShardMapJSON(t *testing.T) {
	m := ShardMap{Meta: true, Nodes: []ShardNode{{ID: "n1", Raft: "h:1", HTTP: "h:2"}},
		Shards: []ShardInfo{{ID: 1, Voters: []string{"n1"}, Leader: "n1", Worlds: 1, Players: 3}, {ID: 2, Voters: []string{"n1"}}},
		Worlds: map[string]uint64{"w": 1}}
	b, err := json.Marshal(m)
	require.NoError(t, err)
	require.JSONEq(t, `{"meta":true,"nodes":[{"id":"n1","raft":"h:1","http":"h:2"}],
		"shards":[{"id":1,"voters":["n1"],"leader":"n1","worlds":1,"players":3,"events_per_sec":0},{"id":2,"voters":["n1"],"worlds":0,"players":0,"events_per_sec":0}],
		"worlds":{"w":1}}`, string(b))
	var back ShardMap
	require.NoError(t, json.Unmarshal(b, &back))
	require.Equal(t, m, back)
}
