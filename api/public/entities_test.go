package public

import (
	"testing"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
)

func TestEntityAnswerUsesPlainValues(t *testing.T) {
	t.Parallel()
	v := fsm.EntityView{ID: "e1", Version: 5, Seq: 9, Fields: []fsm.FieldView{
		{Name: "score", Policy: fsm.PolicyCounter, Value: fsm.Int(3), Version: 4},
		{Name: "tags", Policy: fsm.PolicySet, Set: []fsm.Value{fsm.String("a"), fsm.String("b")}, Version: 5},
	}}
	j := newEntityJSON(v)
	require.Equal(t, map[string]any{"score": int64(3), "tags": []any{"a", "b"}}, j.Fields)
	require.Equal(t, map[string]uint64{"score": 4, "tags": 5}, j.Versions)
}
