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

// positions returns, per incarnation of world, the highest last seq of
// its finished files in dir, the newest incarnation (the latest leader
// time) first and an unknown one (0) last. It deletes the world's open
// files a crash left behind.
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
	slices.SortFunc(out, func(a, b feed.Position) int {
		switch {
		case a.Incarnation == b.Incarnation:
			return 0
		case a.Incarnation == 0:
			return 1
		case b.Incarnation == 0:
			return -1
		}
		return cmp.Compare(b.Incarnation, a.Incarnation)
	})
	return out, errors.Join(errs...)
}
