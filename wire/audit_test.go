package wire

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestAuditProofsHaveTheirDocumentedJSON(t *testing.T) {
	b, err := json.Marshal(AuditProof{World: "arena", Seq: 2, Size: 3, Proof: [][]byte{{1, 2}}})
	require.NoError(t, err)
	require.JSONEq(t, `{"world":"arena","seq":2,"size":3,"proof":["AQI="]}`, string(b))
	b, err = json.Marshal(AuditConsistency{World: "arena", From: 1, To: 3, Proof: [][]byte{}})
	require.NoError(t, err)
	require.JSONEq(t, `{"world":"arena","from":1,"to":3,"proof":[]}`, string(b))
}
