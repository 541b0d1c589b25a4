package wire

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestWorldMoveJSON(t *testing.T) {
	require.Equal(t, "/v1/cluster/worlds/a%2Fb/move", PathWorldMove("a/b"))
	b, err := json.Marshal(MoveStep{Step: MoveStepImport, To: 2, Export: &WorldExport{Incarnation: 7, Seq: 40, Data: []byte{1, 2}}})
	require.NoError(t, err)
	require.JSONEq(t, `{"step":"import","to":2,"export":{"incarnation":7,"seq":40,"data":"AQI="}}`, string(b))
	b, err = json.Marshal(MoveStep{Step: MoveStepExport, To: 2, Checked: true, Unsalted: "voter n3 reads log 14"})
	require.NoError(t, err)
	require.JSONEq(t, `{"step":"export","to":2,"checked":true,"unsalted":"voter n3 reads log 14"}`, string(b), "a target's refusal of salted worlds")
	b, err = json.Marshal(MoveStep{Step: MoveStepExport, To: 2})
	require.NoError(t, err)
	require.JSONEq(t, `{"step":"export","to":2}`, string(b), "an older admin's export step: the target not checked")
	b, err = json.Marshal(MoveStep{Step: MoveStepCheck, To: 2})
	require.NoError(t, err)
	require.JSONEq(t, `{"step":"check","to":2}`, string(b), "what an older binary reads, but for the step")
	b, err = json.Marshal(MoveStep{Step: MoveStepCheck, To: 2, Back: true})
	require.NoError(t, err)
	require.JSONEq(t, `{"step":"check","to":2,"back":true}`, string(b), "a log 17 admin's check")
	b, err = json.Marshal(MoveCheck{Unsalted: "voter n3 reads log 14"})
	require.NoError(t, err)
	require.JSONEq(t, `{"unsalted":"voter n3 reads log 14"}`, string(b))
	b, err = json.Marshal(MoveCheck{})
	require.NoError(t, err)
	require.JSONEq(t, `{}`, string(b))
	b, err = json.Marshal(MoveStep{Step: MoveStepCheck, To: 2, Needs: &Versions{Log: 16, Snapshot: 10, Wire: 1}})
	require.NoError(t, err)
	require.JSONEq(t, `{"step":"check","to":2,"needs":{"log":16,"snapshot":10,"wire":1}}`, string(b), "a world whose rules need log 16")
	b, err = json.Marshal(MoveStep{Step: MoveStepNeeds, To: 2})
	require.NoError(t, err)
	require.JSONEq(t, `{"step":"needs","to":2}`, string(b), "an older binary decodes it and refuses the step: malformed")
	b, err = json.Marshal(MoveSource{})
	require.NoError(t, err)
	require.JSONEq(t, `{}`, string(b), "nothing more needed, not fenced")
	b, err = json.Marshal(MoveSource{Needs: &Versions{Log: 16, Snapshot: 10, Wire: 1}, Fenced: &MoveFence{Shard: 2, Seq: 7}})
	require.NoError(t, err)
	require.JSONEq(t, `{"needs":{"log":16,"snapshot":10,"wire":1},"fenced":{"shard":2,"seq":7}}`, string(b))
	b, err = json.Marshal(MoveStep{Step: MoveStepCheck, To: 2, Back: true, Needs: &Versions{Log: 16, Snapshot: 10, Wire: 1}})
	require.NoError(t, err)
	require.JSONEq(t, `{"step":"check","to":2,"back":true,"needs":{"log":16,"snapshot":10,"wire":1}}`, string(b), "a check of this binary for a world whose rules need log 16")
	b, err = json.Marshal(WorldMoved{World: "w", From: 1, To: 2, Seq: 40})
	require.NoError(t, err)
	require.JSONEq(t, `{"world":"w","from":1,"to":2,"seq":40}`, string(b), "done only when set")
}
