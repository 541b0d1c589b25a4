package spectator_test

import (
	"encoding/json"
	"fmt"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/spectator"
)

// A world whose "hand" field only its owner sees: the public view of an
// event that changed a position and a hand keeps the position only, and
// its versions say nothing of the hand.
func ExampleFilter() {
	rules := fsm.Rules{
		Fields: map[string]fsm.FieldRule{
			"pos":  {Type: fsm.KindInt, Policy: fsm.PolicyAuthoritative},
			"hand": {Type: fsm.KindString, Policy: fsm.PolicyAuthoritative},
		},
		Schema: fsm.Schema{Access: map[string]fsm.FieldAccess{"hand": {Visible: "owner"}}},
	}
	access, err := spectator.NewAccess(rules)
	if err != nil {
		panic(err)
	}
	f := spectator.NewFilter(access, spectator.NewState("w"), nil)
	ev := &fsm.Event{World: "w", Seq: 1, Player: "ann", ClientSeq: 7, Status: fsm.StatusApplied, Changes: []fsm.Change{
		{Entity: "ann", Field: "pos", Op: fsm.OpSet, Value: fsm.Int(3), Version: 1},
		{Entity: "ann", Field: "hand", Op: fsm.OpSet, Value: fsm.String("ace"), Version: 1},
	}}
	p, err := f.Prepare(ev)
	if err != nil {
		panic(err)
	}
	for _, v := range []spectator.Viewer{{}, {Player: "ann"}} {
		view, _, err := access.Resolve(v)
		if err != nil {
			panic(err)
		}
		b, _ := json.Marshal(f.Event(p, view).Wire())
		fmt.Printf("%q sees %s\n", v.Player, b)
	}
	// Output:
	// "" sees {"world":"w","seq":1,"index":0,"time":0,"player":"ann","client_seq":0,"priority":"critical","status":"applied","versions":{"ann":{"pos":1}},"changes":[{"entity":"ann","field":"pos","op":"set","value":3,"version":1}]}
	// "ann" sees {"world":"w","seq":1,"index":0,"time":0,"player":"ann","client_seq":7,"priority":"critical","status":"applied","versions":{"ann":{"hand":1,"pos":1}},"changes":[{"entity":"ann","field":"pos","op":"set","value":3,"version":1},{"entity":"ann","field":"hand","op":"set","value":"ace","version":1}]}
}
