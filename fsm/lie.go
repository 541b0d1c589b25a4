//go:build gsd_lying_leader

package fsm

import (
	"sync"
	"sync/atomic"
)

// The lying leader: test builds only. A replica told to lie skips its
// validators in Apply, as a leader running a buggy or hostile binary
// would, so it applies actions the others reject; hash checkpoints
// (checkpoint.go) must expose it. Corrupt flips a field's value the way a
// failing disk would. Neither exists in a normal build.

var lying sync.Map // *FSM -> *atomic.Bool

// Lie makes f skip its validators (on) or run them again (off).
func (f *FSM) Lie(on bool) {
	v, _ := lying.LoadOrStore(f, new(atomic.Bool))
	v.(*atomic.Bool).Store(on)
}

func (f *FSM) validators() []Validator {
	if v, ok := lying.Load(f); ok && v.(*atomic.Bool).Load() {
		return nil
	}
	return f.cfg.Validators
}

// Corrupt overwrites the value of an existing scalar field behind the log's
// back, updating the hashes as a consistent but wrong state would: the
// replica's next checkpoint mark differs from its peers'. It reports whether
// the field existed.
func (f *FSM) Corrupt(world, entity, field string, v Value) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	w := f.worlds[world]
	if w == nil || w.entities[entity] == nil {
		return false
	}
	e := f.mutEntity(w, entity)
	fl := e.get(field)
	if fl == nil {
		return false
	}
	i, _ := e.find(field)
	fl = fl.clone(f.gen)
	e.fields[i] = fl
	old := fl.hash
	fl.val = v
	fl.rehash(entity)
	w.hash += fl.hash - old
	return true
}
