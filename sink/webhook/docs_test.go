package webhook

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestEventsDocSignatureExampleHolds checks docs/EVENTS.md's signature
// example: its body is what the sink encodes (fields in that order) and
// signs to the digest it quotes.
func TestEventsDocSignatureExampleHolds(t *testing.T) {
	doc, err := os.ReadFile("../../docs/EVENTS.md")
	require.NoError(t, err)
	var body, digest string
	for _, line := range strings.Split(string(doc), "\n") {
		if b, ok := strings.CutPrefix(line, "printf '%s' '"); ok {
			body, _ = strings.CutSuffix(b, "' > body.json")
		}
		if d, ok := strings.CutPrefix(line, "# HMAC-SHA2-256(body.json)= "); ok {
			digest = d
		}
	}
	require.NotEmpty(t, body, "the example body")
	require.NotEmpty(t, digest, "the example digest")
	var b Batch
	require.NoError(t, json.Unmarshal([]byte(body), &b))
	require.NotZero(t, b.Incarnation)
	again, err := json.Marshal(b)
	require.NoError(t, err)
	require.Equal(t, body, string(again), "the example is a batch as the sink writes it")
	require.Equal(t, "sha256="+digest, Sign([]byte("0123456789abcdef0123456789abcdef"), []byte(body)))
}
