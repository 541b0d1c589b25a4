package wire

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestTicketsOpenUnderTheKeyThatSignedThem(t *testing.T) {
	key := []byte(strings.Repeat("k", 32))
	tk := Ticket{World: "arena", Session: "s1", Epoch: 2, Sent: 41, From: "n1", To: "n2", Expires: 1_700_000_000_000}
	s := SignTicket(key, tk)
	payload, _, ok := strings.Cut(s, ".")
	require.True(t, ok)
	require.Equal(t, SignTicketPayload(key, []byte(`{"w":"arena","s":"s1","e":2,"q":41,"f":"n1","t":"n2","x":1700000000000}`)), s)
	got, err := OpenTicket(key, s)
	require.NoError(t, err)
	require.Equal(t, tk, got)

	for name, bad := range map[string]string{
		"no signature":  payload,
		"bad base64":    payload + ".!!",
		"other key":     SignTicket([]byte(strings.Repeat("z", 32)), tk),
		"other payload": "e30" + s[len(payload):],
		"empty":         "",
	} {
		_, err := OpenTicket(key, bad)
		require.EqualError(t, err, "bad signature", name)
	}
	_, err = OpenTicket(key, SignTicketPayload(key, []byte("{")))
	require.ErrorContains(t, err, "undecodable: ")
}
