package webhook

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/gsd-dev/gsd/sink/feed"
)

// checkpointFile is the checkpoint's name in Config.Dir.
const checkpointFile = "webhook-positions.json"

// checkpoint holds, per world, the incarnation the export follows and the
// seq up to which the receiver accepted every event of it. It is one small JSON file, replaced whole
// (written to a temporary file, synced, renamed, the directory synced) on
// every store, so a crash leaves the old or the new positions, never a
// torn file.
type checkpoint struct {
	path string
	mu   sync.Mutex
	pos  map[string]uint64
	inc  map[string]int64 // absent: unknown (stored before incarnations were)
}

// checkpointDoc is the file's content.
type checkpointDoc struct {
	Version   int               `json:"version"`
	Positions map[string]uint64 `json:"positions"`
	// Incarnations names, per world, the incarnation its position
	// belongs to (feed.Position); a world missing here was stored by a
	// gsd before incarnations, which adopts the one it holds. Added
	// within version 1: an older gsd reads the file and ignores it.
	Incarnations map[string]int64 `json:"incarnations,omitempty"`
}

// openCheckpoint reads dir's checkpoint, or starts an empty one.
func openCheckpoint(dir string) (*checkpoint, error) {
	c := &checkpoint{path: filepath.Join(dir, checkpointFile), pos: make(map[string]uint64), inc: make(map[string]int64)}
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
	for w, i := range doc.Incarnations {
		c.inc[w] = i
	}
	return c, nil
}

// get returns world's stored position (0: nothing exported yet).
func (c *checkpoint) get(world string) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pos[world]
}

// position returns world's stored position (none: nothing exported yet).
func (c *checkpoint) position(world string) (feed.Position, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	seq, ok := c.pos[world]
	return feed.Position{Incarnation: c.inc[world], Seq: seq}, ok
}

// set raises world's position to seq and writes the file; a position
// never goes back within an incarnation.
func (c *checkpoint) set(world string, seq uint64) error {
	c.mu.Lock()
	inc := c.inc[world]
	c.mu.Unlock()
	return c.store(world, feed.Position{Incarnation: inc, Seq: seq})
}

// store writes world's position: it raises the seq within the stored
// incarnation, and replaces it for another (a world deleted and created
// again starts over).
func (c *checkpoint) store(world string, p feed.Position) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	cur, known := c.pos[world]
	same := c.inc[world] == p.Incarnation
	if known && same && p.Seq <= cur {
		return nil
	}
	pos := make(map[string]uint64, len(c.pos)+1)
	for w, s := range c.pos {
		pos[w] = s
	}
	inc := make(map[string]int64, len(c.inc)+1)
	for w, i := range c.inc {
		inc[w] = i
	}
	pos[world] = p.Seq
	if p.Incarnation != 0 {
		inc[world] = p.Incarnation
	} else {
		delete(inc, world)
	}
	if err := c.write(pos, inc); err != nil {
		return err
	}
	c.pos, c.inc = pos, inc
	return nil
}

func (c *checkpoint) write(pos map[string]uint64, inc map[string]int64) error {
	b, err := json.Marshal(checkpointDoc{Version: 1, Positions: pos, Incarnations: inc})
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
