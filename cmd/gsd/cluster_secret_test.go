package main

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestClusterSecretComesFromTheFileElseTheEnvironment(t *testing.T) {
	good := strings.Repeat("s", 32)
	t.Setenv(EnvClusterSecret, " "+good+"\n")
	o := clusterOptions{ticketTTL: time.Second}
	b, err := o.secret()
	require.NoError(t, err)
	require.Equal(t, good, string(b))

	o.secretFile = writeFile(t, strings.Repeat("f", 40))
	b, err = o.secret()
	require.NoError(t, err)
	require.Equal(t, strings.Repeat("f", 40), string(b), "the file wins")

	t.Setenv(EnvClusterSecret, "")
	b, err = (&clusterOptions{ticketTTL: time.Second}).secret()
	require.NoError(t, err)
	require.Nil(t, b, "empty: off")

	t.Setenv(EnvClusterSecret, "short")
	_, err = (&clusterOptions{ticketTTL: time.Second}).secret()
	require.ErrorContains(t, err, "$"+EnvClusterSecret)
}
