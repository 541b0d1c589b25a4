package play

import (
	"strconv"

	"github.com/gsd-dev/gsd/wire"
)

// Enter and leave messages' JSON without reflection (issue 11): with a
// grid, bulk moves make an enter and a leave message for every cell group
// the mover's cell enters or leaves, each tick, and encoding/json's
// reflection over a keyframe's maps was about a tenth of the players-10k
// mix's CPU. appendEnterJSON and appendLeaveJSON write the bytes
// json.Marshal writes (struct fields in order, omitempty as tagged, map
// keys sorted, strings escaped as wire.AppendJSONString does: a property test
// compares the two); what they cannot write the same way (a NaN or
// infinite float, which json.Marshal refuses) they leave to json.Marshal.

// appendEnterJSON appends k's JSON to b; false when k holds a value only
// json.Marshal can judge.
func appendEnterJSON(b []byte, k *wire.Keyframe) ([]byte, bool) {
	b = append(b, `{"type":`...)
	b = wire.AppendJSONString(b, k.Type)
	b = append(b, `,"world":`...)
	b = wire.AppendJSONString(b, k.World)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, k.Seq, 10)
	b = append(b, `,"time":`...)
	b = strconv.AppendInt(b, k.Time, 10)
	b = append(b, `,"entities":`...)
	if k.Entities == nil {
		b = append(b, "null"...)
	} else {
		var ok bool
		if b, ok = wire.AppendWatchEntitiesJSON(b, k.Entities); !ok {
			return b, false
		}
	}
	if k.Whole {
		b = append(b, `,"whole":true`...)
	}
	if k.Checkpoint != "" {
		b = append(b, `,"checkpoint":`...)
		b = wire.AppendJSONString(b, k.Checkpoint)
	}
	return append(b, '}'), true
}

// appendLeaveJSON appends l's JSON to b.
func appendLeaveJSON(b []byte, l *wire.Leave) []byte {
	b = append(b, `{"type":`...)
	b = wire.AppendJSONString(b, l.Type)
	b = append(b, `,"world":`...)
	b = wire.AppendJSONString(b, l.World)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, l.Seq, 10)
	b = append(b, `,"ids":`...)
	if l.IDs == nil {
		return append(b, "null}"...)
	}
	b = append(b, '[')
	for i, id := range l.IDs {
		if i > 0 {
			b = append(b, ',')
		}
		b = wire.AppendJSONString(b, id)
	}
	return append(b, "]}"...)
}
