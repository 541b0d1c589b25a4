package auditor

import "slices"

// Recent is how many of a world's newest signed checkpoints the auditor
// keeps for keyframes (CheckpointAt): at the default signing interval of
// 10 s, 64 reach back over 10 minutes, beyond the longest view delay
// (fsm.MaxViewDelay, 5 minutes).
const Recent = 64

// signedAt is one signed checkpoint and the size it commits to.
type signedAt struct {
	size int64
	note []byte
}

// remember keeps a newly signed checkpoint among w's recent ones (sizes
// ascending, at most Recent). w.mu is held.
func (w *world) remember(size int64, note []byte) {
	if n := len(w.recent); n > 0 && w.recent[n-1].size >= size {
		w.recent[n-1] = signedAt{size, note} // signed again at its size
		return
	}
	if len(w.recent) == Recent {
		w.recent = slices.Delete(w.recent, 0, 1)
	}
	w.recent = append(w.recent, signedAt{size, note})
}

// CheckpointAt returns world id's newest signed checkpoint of a tree of
// at most seq events among the recent ones (nil when there is none: no
// audit key, nothing signed that old, or a world this node does not log
// yet). It signs nothing and never returns a newer checkpoint, so a
// delayed view's keyframe (spectator.CheckpointFunc) learns nothing of
// the events it may not see yet.
func (a *Auditor) CheckpointAt(id string, seq uint64) []byte {
	a.mu.Lock()
	w := a.worlds[id]
	a.mu.Unlock()
	if w == nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	i, found := slices.BinarySearchFunc(w.recent, int64(min(seq, 1<<62)), func(s signedAt, size int64) int {
		switch {
		case s.size < size:
			return -1
		case s.size > size:
			return 1
		}
		return 0
	})
	if found {
		return w.recent[i].note
	}
	if i == 0 {
		return nil
	}
	return w.recent[i-1].note
}
