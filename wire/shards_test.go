package wire

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPathShardReplaceNamesTheShard(t *testing.T) {
	require.Equal(t, "/v1/cluster/shards/0/replace", PathShardReplace(0))
	require.Equal(t, "/v1/cluster/shards/18446744073709551615/replace", PathShardReplace(1<<64-1))
}

func TestPathShardNodeEscapesTheNodeID(t *testing.T) {
	require.Equal(t, "/v1/cluster/shards/nodes/n3", PathShardNode("n3"))
	require.Equal(t, "/v1/cluster/shards/nodes/a%2Fb%20c", PathShardNode("a/b c"), "an id stays one path segment")
}
