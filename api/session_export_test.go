package api

import (
	"encoding/json"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// exportFile reads world's players' data file from n.
func exportFile(t *testing.T, n *node, world string) wire.PlayerDataFile {
	t.Helper()
	code, _, b := n.env.Do("GET", "/v1/worlds/"+world+"/sessions:export", "")
	require.Equal(t, http.StatusOK, code, "%s", b)
	var f wire.PlayerDataFile
	require.NoError(t, json.Unmarshal(b, &f))
	return f
}

// importFile posts body as world's import on n and returns the answer.
func importFile(t *testing.T, n *node, world, body string) wire.ImportAnswer {
	t.Helper()
	code, _, b := n.env.Do("POST", "/v1/worlds/"+world+"/sessions:import", body)
	require.Equal(t, http.StatusOK, code, "%s", b)
	var a wire.ImportAnswer
	require.NoError(t, json.Unmarshal(b, &a))
	return a
}

// The export carries each player's data version; importing it elsewhere
// keeps every version at least the file's (never lowers it), and a file
// exported before versions (the golden file) still imports, each player
// then getting a version of the importing cluster.
func TestPlayerDataExportCarriesVersionsAndTheImportKeepsThem(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	n := startNodeOn(t, "n1", true, ln)
	require.Eventually(t, n.st.LeaderReady, 10*time.Second, 10*time.Millisecond)
	for _, w := range []string{"arena", "copy"} {
		code, _, b := n.env.Do("POST", "/v1/worlds", `{"id":"`+w+`"}`)
		require.Equal(t, http.StatusCreated, code, "%s", b)
	}

	old, err := os.ReadFile("testdata/player_data_before_versions.json")
	require.NoError(t, err)
	a := importFile(t, n, "arena", string(old))
	require.Equal(t, 2, a.Imported)
	require.Empty(t, a.Behind)

	f := exportFile(t, n, "arena")
	recs, err := n.st.PlayerRecords("arena")
	require.NoError(t, err)
	require.Len(t, f.Players, 2)
	for i, p := range f.Players {
		require.Equal(t, recs[i].Player, p.Player)
		require.Positive(t, p.DataVersion, p.Player)
		require.Equal(t, recs[i].Version, p.DataVersion, p.Player)
	}
	var before wire.PlayerDataFile
	require.NoError(t, json.Unmarshal(old, &before))
	for i, p := range before.Players {
		require.Zero(t, p.DataVersion, "the golden file predates versions")
		require.Equal(t, p.Data, f.Players[i].Data)
	}
	code, _, b := n.env.Do("GET", "/v1/worlds/nope/sessions:export", "")
	require.Equal(t, http.StatusNotFound, code, "%s", b)

	body, err := json.Marshal(f)
	require.NoError(t, err)
	a = importFile(t, n, "copy", string(body))
	require.Equal(t, 2, a.Imported)
	require.Empty(t, a.Behind)
	g := exportFile(t, n, "copy")
	require.Len(t, g.Players, 2)
	for i, p := range g.Players {
		require.Equal(t, f.Players[i].Data, p.Data)
		require.GreaterOrEqual(t, p.DataVersion, f.Players[i].DataVersion, "%s: the import does not lower the version", p.Player)
	}

	// A version from a clock far ahead of this cluster's cannot be kept:
	// the answer names the player.
	ahead := `{"players":[{"player":"zed","data":{"rank":1},"data_version":` + "9000000000000000000" + `}]}`
	a = importFile(t, n, "copy", ahead)
	require.Equal(t, []string{"zed"}, a.Behind)
}
