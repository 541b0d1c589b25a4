package files

import (
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gsd-dev/gsd/fsm"
)

// file is a world's open file: events first..last so far, gzip NDJSON.
type file struct {
	dir, world  string
	first, last uint64
	f           *os.File
	gz          *gzip.Writer
	bytes       int64 // uncompressed
	opened      time.Time
}

func create(dir, world string, first uint64) (*file, error) {
	f, err := os.OpenFile(filepath.Join(dir, openName(world, first)), os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("create file for world %s: %w", world, err)
	}
	return &file{dir: dir, world: world, first: first, last: first - 1, f: f, gz: gzip.NewWriter(f), opened: time.Now()}, nil
}

// append writes one event as one line.
func (f *file) append(ev *fsm.Event) error {
	line, err := json.Marshal(ev.Wire())
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
	name := FileName(f.world, f.first, f.last)
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

// resume returns the seq after which world's next file starts: the
// highest last seq of its finished files in dir (0: none). It deletes
// the world's open files a crash left behind.
func resume(dir, world string) (uint64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", dir, err)
	}
	var pos uint64
	partial := openPrefix + escape(world) + "."
	var errs []error
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), partial) {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		if w, _, last, ok := ParseFileName(e.Name()); ok && w == world {
			pos = max(pos, last)
		}
	}
	return pos, errors.Join(errs...)
}
