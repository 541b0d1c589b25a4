package detect_test

import (
	"context"
	"io"
	"testing"

	"github.com/gsd-dev/gsd/anticheat/corpus"
	"github.com/gsd-dev/gsd/anticheat/detect"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
)

// replay is a feed (an archive) of evs, in reads of up to 7 events, that
// ends with io.EOF.
type replay struct {
	evs []*fsm.Event
	pos int
}

func (r *replay) Next(context.Context) ([]*fsm.Event, error) {
	if r.pos == len(r.evs) {
		return nil, io.EOF
	}
	n := min(7, len(r.evs)-r.pos)
	r.pos += n
	return r.evs[r.pos-n : r.pos], nil
}

// follow runs a new default Detector over evs through Follow and returns
// the flags it raised, and those of one more evaluation when final.
func follow(t *testing.T, evs []*fsm.Event, final bool) []detect.Flag {
	d, err := detect.New(detect.DefaultConfig())
	require.NoError(t, err)
	var mem detect.Memory
	require.ErrorIs(t, d.Follow(context.Background(), &replay{evs: evs}, &mem), io.EOF)
	out := mem.Flags()
	if final {
		out = append(out, d.Evaluate()...)
	}
	return out
}

func key(f detect.Flag) string {
	return f.Detector + " " + f.Players[0] + " " + f.Players[len(f.Players)-1]
}

// TestARestartedDetectorRebuiltFromTheArchiveFlagsAsAnUninterruptedOne
// stops a node's detectors halfway through a corpus and starts new ones,
// which follow the world from seq 1 again (the archive): they raise
// exactly the flags, scores and evidence of detectors never stopped, the
// flags raised before the stop among them (recorded once: the records
// deduplicate). Detectors that started afresh at the restart instead miss
// cheaters whose counts began before it.
func TestARestartedDetectorRebuiltFromTheArchiveFlagsAsAnUninterruptedOne(t *testing.T) {
	var evs []*fsm.Event
	_, err := corpus.Generate(corpus.A(300), func(ev *fsm.Event) { evs = append(evs, ev) })
	require.NoError(t, err)
	half := len(evs) / 2

	uninterrupted := follow(t, evs, true)
	require.NotEmpty(t, uninterrupted)
	before := follow(t, evs[:half], false) // then the node stops
	after := follow(t, evs, true)          // restarted: from seq 1 on
	require.Equal(t, uninterrupted, after)
	require.NotEmpty(t, before)
	require.Equal(t, uninterrupted[:len(before)], before, "the flags before the stop are the uninterrupted run's first")

	fresh := map[string]bool{}
	for _, f := range follow(t, evs[half:], true) {
		fresh[key(f)] = true
	}
	missed := 0
	for _, f := range uninterrupted[len(before):] {
		if !fresh[key(f)] {
			missed++
		}
	}
	require.Positive(t, missed, "without the rebuild, flags raised after the restart are missed")
}
