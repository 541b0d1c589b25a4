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

func TestSignedAuditSaltsCarryTheTableBytesAsTheyAre(t *testing.T) {
	table := `{"world":"arena","salts":[]}`
	b, err := json.Marshal(AuditSaltsSigned{Table: json.RawMessage(table), Note: "gsd audit salts v1\n"})
	require.NoError(t, err)
	require.Equal(t, `{"table":`+table+`,"note":"gsd audit salts v1\n"}`, string(b))
	var got AuditSaltsSigned
	require.NoError(t, json.Unmarshal(b, &got))
	require.Equal(t, table, string(got.Table), "the signed bytes, unchanged")
	// A node from before signed salts answers the table alone: no table field.
	var old AuditSaltsSigned
	require.NoError(t, json.Unmarshal([]byte(table), &old))
	require.Nil(t, old.Table)
}
