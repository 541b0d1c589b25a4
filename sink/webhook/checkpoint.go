package webhook

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// checkpointFile is the checkpoint's name in Config.Dir.
const checkpointFile = "webhook-positions.json"

// checkpoint holds, per world, the seq up to which every event was
// accepted by the receiver. It is one small JSON file, replaced whole
// (written to a temporary file, synced, renamed, the directory synced) on
// every store, so a crash leaves the old or the new positions, never a
// torn file.
type checkpoint struct {
	path string
	mu   sync.Mutex
	pos  map[string]uint64
}

// checkpointDoc is the file's content.
type checkpointDoc struct {
	Version   int               `json:"version"`
	Positions map[string]uint64 `json:"positions"`
}

// openCheckpoint reads dir's checkpoint, or starts an empty one.
func openCheckpoint(dir string) (*checkpoint, error) {
	c := &checkpoint{path: filepath.Join(dir, checkpointFile), pos: make(map[string]uint64)}
	b, err := os.ReadFile(c.path)
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("webhook checkpoint: %w", err)
	}
	var doc checkpointDoc
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("webhook checkpoint %s: %w", c.path, err)
	}
	if doc.Version != 1 {
		return nil, fmt.Errorf("webhook checkpoint %s: version %d, want 1", c.path, doc.Version)
	}
	for w, p := range doc.Positions {
		c.pos[w] = p
	}
	return c, nil
}

// get returns world's stored position (0: nothing exported yet).
func (c *checkpoint) get(world string) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pos[world]
}

// set raises world's position to seq and writes the file; a position
// never goes back.
func (c *checkpoint) set(world string, seq uint64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if seq <= c.pos[world] {
		return nil
	}
	next := make(map[string]uint64, len(c.pos)+1)
	for w, p := range c.pos {
		next[w] = p
	}
	next[world] = seq
	if err := c.write(next); err != nil {
		return err
	}
	c.pos = next
	return nil
}

func (c *checkpoint) write(pos map[string]uint64) error {
	b, err := json.Marshal(checkpointDoc{Version: 1, Positions: pos})
	if err != nil {
		return fmt.Errorf("webhook checkpoint: %w", err)
	}
	dir := filepath.Dir(c.path)
	f, err := os.CreateTemp(dir, checkpointFile+".tmp*")
	if err != nil {
		return fmt.Errorf("webhook checkpoint: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, c.path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("webhook checkpoint: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		err = d.Sync()
		_ = d.Close()
		if err != nil {
			return fmt.Errorf("webhook checkpoint: sync dir: %w", err)
		}
	}
	return nil
}
