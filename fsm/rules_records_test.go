package fsm

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// A records world's rules are strict, hide every field and let only
// servers write, and they pass the rules' own validation.
func TestRecordRulesHideEveryFieldAndLetOnlyServersWrite(t *testing.T) {
	r := RecordRules(map[string]FieldRule{"seq": {Type: KindInt, Policy: PolicyAuthoritative}, "tags": {Type: KindString, Policy: PolicySet}})
	require.True(t, r.Strict)
	require.Equal(t, map[string]FieldRule{"seq": {Type: KindInt, Policy: PolicyAuthoritative}, "tags": {Type: KindString, Policy: PolicySet}}, r.Fields)
	require.Equal(t, map[string]FieldAccess{"seq": {Write: "server", Visible: "hidden"}, "tags": {Write: "server", Visible: "hidden"}}, r.Schema.Access)
	require.NoError(t, r.Validate())
}
