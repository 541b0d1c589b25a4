package spectator

import (
	"strconv"

	"github.com/gsd-dev/gsd/wire"
)

// Delta frames' JSON without reflection. A pipeline makes a delta per tick
// and view, and a replay one per step, so encoding/json's reflection, map
// key sorting and Value.MarshalJSON calls were a third of a replay's CPU.
// appendWatchDelta writes the bytes json.Marshal writes (struct fields in
// order, omitempty as tagged, map keys sorted, strings escaped as
// encoding/json escapes them: a property test compares the two); what it
// cannot write the same way (a NaN or infinite float, which json.Marshal
// refuses) it leaves to json.Marshal.

// appendWatchDelta appends d's JSON to b; false when d holds a value only
// json.Marshal can judge.
func appendWatchDelta(b []byte, d *wire.WatchDelta) ([]byte, bool) {
	b = append(b, `{"type":`...)
	b = wire.AppendJSONString(b, d.Type)
	b = append(b, `,"world":`...)
	b = wire.AppendJSONString(b, d.World)
	b = append(b, `,"from":`...)
	b = strconv.AppendUint(b, d.From, 10)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, d.Seq, 10)
	b = append(b, `,"time":`...)
	b = strconv.AppendInt(b, d.Time, 10)
	b = append(b, `,"entities":`...)
	if d.Entities == nil {
		return append(b, `null}`...), true
	}
	b, ok := wire.AppendWatchEntitiesJSON(b, d.Entities)
	if !ok {
		return b, false
	}
	return append(b, '}'), true
}
