package spectator

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"sort"
	"time"

	"github.com/gsd-dev/gsd/wire"
)

// A replay file is what one view saw of a world over a span of leader
// time: NDJSON of watch frames, a keyframe first, then a delta per step
// in which the view saw a change. It holds nothing the view may not see,
// so it can be handed to that view's audience as it is.

// Record writes r's view from leader time from to leader time to as a
// replay file, one delta per step of leader time. A replay that cannot
// reach to (the world or the delay has not) ends the file where it
// stopped and returns ErrNotReached.
func Record(ctx context.Context, r *Replay, w io.Writer, from, to time.Time, step time.Duration) error {
	if step <= 0 || to.Before(from) {
		return errors.New("spectator: record needs a step > 0 and from <= to")
	}
	bw := bufio.NewWriter(w)
	write := func(f *Frame) error {
		if f == nil {
			return nil
		}
		if _, err := bw.Write(f.Data); err != nil {
			return err
		}
		return bw.WriteByte('\n')
	}
	f, err := r.SeekTime(ctx, from)
	if werr := write(f); werr != nil {
		return werr
	}
	for t := from; err == nil && t.Before(to); {
		t = t.Add(step)
		if t.After(to) {
			t = to
		}
		f, err = r.Advance(ctx, t)
		if werr := write(f); werr != nil {
			return werr
		}
	}
	if ferr := bw.Flush(); ferr != nil {
		return ferr
	}
	return err
}

// maxReplayLine bounds one frame of a replay file (a keyframe of a big
// world is the largest).
var maxReplayLine = 64 << 20

// Recording is a replay file read back: seek it to any seq it covers.
type Recording struct {
	frames []recFrame // a keyframe first; in seq order
}

// recFrame is a keyframe or a delta of a recording.
type recFrame struct {
	seq   uint64
	key   *wire.Keyframe
	delta *wire.WatchDelta
}

// ReadRecording reads a replay file. A file that does not start with a
// keyframe, or holds a frame that is not a keyframe or a delta of its
// world in seq order, is refused with an error naming the line.
func ReadRecording(r io.Reader) (*Recording, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, min(64<<10, maxReplayLine)), maxReplayLine)
	rec := &Recording{}
	line := 0
	world := ""
	for sc.Scan() {
		line++
		var head struct {
			Type  string `json:"type"`
			World string `json:"world"`
			Seq   uint64 `json:"seq"`
		}
		if err := json.Unmarshal(sc.Bytes(), &head); err != nil {
			return nil, fmt.Errorf("spectator: replay file line %d: %w", line, err)
		}
		var f recFrame
		switch head.Type {
		case wire.TypeKeyframe:
			f.key = &wire.Keyframe{}
			if err := json.Unmarshal(sc.Bytes(), f.key); err != nil {
				return nil, fmt.Errorf("spectator: replay file line %d: %w", line, err)
			}
		case wire.TypeWatchDelta:
			f.delta = &wire.WatchDelta{}
			if err := json.Unmarshal(sc.Bytes(), f.delta); err != nil {
				return nil, fmt.Errorf("spectator: replay file line %d: %w", line, err)
			}
		}
		switch {
		case f.key == nil && f.delta == nil, line == 1 && f.key == nil:
			return nil, fmt.Errorf("spectator: replay file line %d: a %q frame (a keyframe first, then deltas or keyframes)", line, head.Type)
		case line == 1:
			world = head.World
		case head.World != world || head.Seq < rec.last() || head.Seq == rec.last() && f.delta != nil:
			return nil, fmt.Errorf("spectator: replay file line %d: %s of %s seq %d after %s seq %d",
				line, head.Type, head.World, head.Seq, world, rec.last())
		}
		f.seq = head.Seq
		rec.frames = append(rec.frames, f)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("spectator: replay file: %w", err)
	}
	if line == 0 {
		return nil, errors.New("spectator: replay file is empty")
	}
	return rec, nil
}

// last returns the seq of the recording's last frame.
func (rec *Recording) last() uint64 { return rec.frames[len(rec.frames)-1].seq }

// Span returns the first and last seq the recording shows.
func (rec *Recording) Span() (first, last uint64) { return rec.frames[0].seq, rec.last() }

// At returns the keyframe of the recording's view after its last frame
// with a seq up to seq (its first keyframe for a seq before it).
func (rec *Recording) At(seq uint64) *wire.Keyframe {
	end := sort.Search(len(rec.frames), func(i int) bool { return rec.frames[i].seq > seq })
	start := 0
	for i := range rec.frames[:end] {
		if rec.frames[i].key != nil {
			start = i
		}
	}
	k0 := rec.frames[start].key
	k := &wire.Keyframe{Type: wire.TypeKeyframe, World: k0.World, Seq: k0.Seq, Time: k0.Time, Entities: maps.Clone(k0.Entities)}
	if k.Entities == nil {
		k.Entities = map[string]wire.WatchEntity{}
	}
	for _, f := range rec.frames[start+1 : max(end, start+1)] {
		ApplyDelta(k, f.delta)
	}
	return k
}

// ApplyDelta applies a delta to a keyframe as a watcher does: replaced
// and new entities take the delta's fields, others merge them in, and
// deleted ones (or replaced with no field) go. The keyframe's maps are
// replaced, never changed, so a keyframe shared elsewhere stays as it was.
func ApplyDelta(k *wire.Keyframe, d *wire.WatchDelta) {
	ents := maps.Clone(k.Entities)
	if ents == nil {
		ents = map[string]wire.WatchEntity{}
	}
	for id, we := range d.Entities {
		old, had := ents[id]
		switch {
		case we.Deleted, we.Replace && len(we.Fields) == 0:
			delete(ents, id)
			continue
		case we.Replace || !had:
			ents[id] = wire.WatchEntity{Version: we.Version, Fields: maps.Clone(we.Fields)}
			continue
		}
		fields := maps.Clone(old.Fields)
		if fields == nil {
			fields = map[string]wire.WatchField{}
		}
		maps.Copy(fields, we.Fields)
		ents[id] = wire.WatchEntity{Version: we.Version, Fields: fields}
	}
	k.Entities, k.Seq, k.Time = ents, d.Seq, d.Time
}
