package detect

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Checkpoints is where a Runner keeps its checkpoint: one, replaced whole
// at every save.
type Checkpoints interface {
	// Load returns the checkpoint saved last, or nil and no error when
	// there is none.
	Load() ([]byte, error)
	// Save replaces the checkpoint by b, all or nothing.
	Save(b []byte) error
}

// File keeps a checkpoint in the file at Path (gsd --detect: detect.ckpt
// in the node's data directory). Save writes a temporary file beside it,
// syncs it and renames it over the old one, then syncs the directory: a
// crash leaves the old checkpoint or the new one, never half of one. (One
// blob replaced whole needs no database: bbolt does not checksum its data
// pages, and the checkpoint's own checksum finds a damaged file.)
type File struct{ Path string }

var _ Checkpoints = File{}

// Load reads the file; a missing file is no checkpoint.
func (f File) Load() ([]byte, error) {
	b, err := os.ReadFile(f.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read detectors' checkpoint: %w", err)
	}
	return b, nil
}

// Save writes b to the file atomically.
func (f File) Save(b []byte) error {
	tmp := f.Path + ".tmp"
	w, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err == nil {
		_, err = w.Write(b)
		if err == nil {
			err = w.Sync()
		}
		if cerr := w.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Rename(tmp, f.Path)
		}
		if err != nil {
			os.Remove(tmp)
		}
	}
	if err == nil {
		err = syncDir(filepath.Dir(f.Path))
	}
	if err != nil {
		return fmt.Errorf("save detectors' checkpoint: %w", err)
	}
	return nil
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err == nil {
		err = d.Sync()
		d.Close()
	}
	return err
}
