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
	start  wire.Keyframe
	deltas []wire.WatchDelta
}

// ReadRecording reads a replay file. A file that does not start with a
// keyframe, or holds a frame it does not know or out of seq order, is
// refused with an error naming the line.
func ReadRecording(r io.Reader) (*Recording, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, min(64<<10, maxReplayLine)), maxReplayLine)
	rec := &Recording{}
	line := 0
	for sc.Scan() {
		line++
		var head struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal(sc.Bytes(), &head); err != nil {
			return nil, fmt.Errorf("spectator: replay file line %d: %w", line, err)
		}
		switch {
		case line == 1 && head.Type == wire.TypeKeyframe:
			if err := json.Unmarshal(sc.Bytes(), &rec.start); err != nil {
				return nil, fmt.Errorf("spectator: replay file line %d: %w", line, err)
			}
		case line > 1 && head.Type == wire.TypeWatchDelta:
			var d wire.WatchDelta
			if err := json.Unmarshal(sc.Bytes(), &d); err != nil {
				return nil, fmt.Errorf("spectator: replay file line %d: %w", line, err)
			}
			if d.Seq <= rec.last() || d.World != rec.start.World {
				return nil, fmt.Errorf("spectator: replay file line %d: delta of %s seq %d after %s seq %d",
					line, d.World, d.Seq, rec.start.World, rec.last())
			}
			rec.deltas = append(rec.deltas, d)
		default:
			return nil, fmt.Errorf("spectator: replay file line %d: a %q frame (a keyframe first, then deltas)", line, head.Type)
		}
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
func (rec *Recording) last() uint64 {
	if len(rec.deltas) == 0 {
		return rec.start.Seq
	}
	return rec.deltas[len(rec.deltas)-1].Seq
}

// Span returns the first and last seq the recording shows.
func (rec *Recording) Span() (first, last uint64) { return rec.start.Seq, rec.last() }

// At returns the keyframe of the recording's view after its last frame
// with a seq up to seq (its first keyframe for a seq before it).
func (rec *Recording) At(seq uint64) *wire.Keyframe {
	k := &wire.Keyframe{Type: wire.TypeKeyframe, World: rec.start.World, Seq: rec.start.Seq, Time: rec.start.Time,
		Entities: maps.Clone(rec.start.Entities)}
	if k.Entities == nil {
		k.Entities = map[string]wire.WatchEntity{}
	}
	i := sort.Search(len(rec.deltas), func(i int) bool { return rec.deltas[i].Seq > seq })
	for _, d := range rec.deltas[:i] {
		ApplyDelta(k, &d)
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
