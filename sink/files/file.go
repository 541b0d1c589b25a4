package files

import (
	"cmp"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/sink/feed"
	"github.com/gsd-dev/gsd/wire"
)

// file is a world's open file: events first..last so far of incarnation
// inc, gzip NDJSON.
type file struct {
	dir, world  string
	inc         int64
	first, last uint64
	f           *os.File
	gz          *gzip.Writer
	bytes       int64 // uncompressed
	opened      time.Time
}

func create(dir, world string, inc int64, first uint64) (*file, error) {
	f, err := os.OpenFile(filepath.Join(dir, openName(world, first)), os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("create file for world %s: %w", world, err)
	}
	return &file{dir: dir, world: world, inc: inc, first: first, last: first - 1, f: f, gz: gzip.NewWriter(f), opened: time.Now()}, nil
}

// record is one line: the event as the NDJSON stream has it, and the
// incarnation of the world it belongs to (docs/EVENTS.md).
type record struct {
	wire.Event
	Incarnation int64 `json:"incarnation"`
}

// append writes one event as one line.
func (f *file) append(ev *fsm.Event) error {
	line, err := json.Marshal(record{Event: ev.Wire(), Incarnation: f.inc})
	if err != nil {
		return fmt.Errorf("encode world %s event %d: %w", f.world, ev.Seq, err)
	}
	line = append(line, '\n')
	if _, err := f.gz.Write(line); err != nil {
		return fmt.Errorf("write world %s event %d: %w", f.world, ev.Seq, err)
	}
	f.bytes += int64(len(line))
	f.last = ev.Seq
	return nil
}

// finish closes the gzip stream, syncs the file and gives it its
// finished name; the directory is synced so the name survives a crash.
func (f *file) finish() (string, error) {
	name := Name{World: f.world, Incarnation: f.inc, First: f.first, Last: f.last}.String()
	err := f.gz.Close()
	if err == nil {
		err = f.f.Sync()
	}
	if cerr := f.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.f.Name(), filepath.Join(f.dir, name))
	}
	if err == nil {
		err = syncDir(f.dir)
	}
	if err != nil {
		_ = os.Remove(f.f.Name())
		return "", fmt.Errorf("finish %s: %w", name, err)
	}
	return name, nil
}

// abort drops the file; its events are written again from the checkpoint.
func (f *file) abort() {
	_ = f.f.Close()
	_ = os.Remove(f.f.Name())
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// findRecord returns the line of seq in world's finished files of
// incarnation inc in dir (found false when no file holds it).
func findRecord(dir, world string, inc int64, seq uint64) (record, bool, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return record{}, false, fmt.Errorf("read %s: %w", dir, err)
	}
	for _, e := range ents {
		n, ok := ParseName(e.Name())
		if !ok || n.World != world || n.Incarnation != inc || seq < n.First || seq > n.Last {
			continue
		}
		return readRecord(filepath.Join(dir, e.Name()), seq)
	}
	return record{}, false, nil
}

// readRecord returns the line of seq in the finished file path.
func readRecord(path string, seq uint64) (record, bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return record{}, false, err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return record{}, false, fmt.Errorf("read %s: %w", path, err)
	}
	dec := json.NewDecoder(gz)
	for {
		var rec record
		if err := dec.Decode(&rec); err != nil {
			return record{}, false, fmt.Errorf("read %s: seq %d: %w", path, seq, err)
		}
		if rec.Seq == seq {
			return rec, true, nil
		}
	}
}

// positions returns, per incarnation of world, the highest last seq of
// its finished files in dir, the newest first (newer: see newer), and
// deletes the world's open files a crash left behind.
func positions(dir, world string) ([]feed.Position, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", dir, err)
	}
	last := make(map[int64]uint64)
	partial := openPrefix + escape(world) + "."
	var errs []error
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), partial) {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		if n, ok := ParseName(e.Name()); ok && n.World == world {
			last[n.Incarnation] = max(last[n.Incarnation], n.Last)
		}
	}
	out := make([]feed.Position, 0, len(last))
	for inc, seq := range last {
		out = append(out, feed.Position{Incarnation: inc, Seq: seq})
	}
	slices.SortFunc(out, func(a, b feed.Position) int { return newer(a.Incarnation, b.Incarnation) })
	return out, errors.Join(errs...)
}

// newer orders incarnations of one world newest first, for a world whose
// incarnation this node cannot read (created before incarnations, event
// 1 pruned), which a Follower then goes on with: the ones this gsd names
// such a world by (negative: event 1's leader time, negated) first, the
// latest time first; then creation indexes (and leader times the sinks
// wrote before they used creation indexes), the largest first; unknown
// (0) last.
func newer(a, b int64) int {
	rank := func(inc int64) int {
		switch {
		case inc < 0:
			return 0
		case inc > 0:
			return 1
		}
		return 2
	}
	if c := cmp.Compare(rank(a), rank(b)); c != 0 {
		return c
	}
	if a < 0 {
		return cmp.Compare(a, b) // -time: the later time is the smaller
	}
	return cmp.Compare(b, a)
}
