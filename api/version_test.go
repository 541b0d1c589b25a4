package api

import (
	"net/http"
	"testing"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/api/internal/apitest"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
)

func TestCheckWireVersionAcceptsOwnAndOlderAndRefusesNewerMajors(t *testing.T) {
	h := http.Header{}
	require.NoError(t, edge.CheckWireVersion(h), "clients and older nodes send none")
	edge.SetWireVersion(h)
	require.Equal(t, "1.0", h.Get(edge.HeaderWireVersion))
	require.NoError(t, edge.CheckWireVersion(h))
	for _, ok := range []string{"1", "1.7"} {
		require.NoError(t, edge.CheckWireVersion(http.Header{edge.HeaderWireVersion: {ok}}), ok)
	}
	for _, bad := range []string{"x", "0.1", "1.x", "-1", "1.2.3"} {
		require.ErrorIs(t, edge.CheckWireVersion(http.Header{edge.HeaderWireVersion: {bad}}), fsm.ErrMalformed, bad)
	}
	err := edge.CheckWireVersion(http.Header{edge.HeaderWireVersion: {"2.0"}})
	require.ErrorIs(t, err, edge.ErrWireVersion)
	require.ErrorContains(t, err, "this node speaks 1.0")
}

func TestServerRefusesCallsOfANewerWireMajor(t *testing.T) {
	t.Parallel()
	e := newEnv(t, apitest.NewFake())
	m := e.RequireError(400, edge.CodeWireVersion, "GET", "/v1/worlds", "", edge.HeaderWireVersion, "2.0")
	require.Contains(t, m["error"], "upgrade")
	e.RequireError(400, fsm.CodeMalformed, "GET", "/v1/worlds", "", edge.HeaderWireVersion, "one")
	code, _ := e.DoJSON("GET", "/v1/worlds", "", edge.HeaderWireVersion, edge.WireVersion())
	require.Equal(t, 200, code)
}
