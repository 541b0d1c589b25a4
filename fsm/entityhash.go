package fsm

import "fmt"

// EntityHash returns the part of a world's state hash its entities make,
// and the seq it reflects. The world's hash (Hash) also covers sessions,
// acks, bans, player data and rules, which are not in the event feed; this
// part is what a replay of the feed recomputes (FieldHash), so a replay's
// state can be checked against the live world's at the same seq.
func (f *FSM) EntityHash(worldID string) (hash, seq uint64, err error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	w := f.worlds[worldID]
	if w == nil {
		return 0, 0, fmt.Errorf("%w: %s", ErrUnknownWorld, worldID)
	}
	return w.hash, w.seq, nil
}

// FieldHash returns one field's term of EntityHash (the terms add up,
// with wraparound): entity's field fv, whose values have kind k (a set's
// elements' kind). fv is as Entity reads it: the value, a counter's total
// in Value, or a set's elements in Set.
func FieldHash(entity string, fv FieldView, k Kind) uint64 {
	fl := field{name: fv.Name, policy: fv.Policy, kind: k, version: fv.Version, val: fv.Value}
	switch fv.Policy {
	case PolicyCounter:
		fl.total = fv.Value.Int
	case PolicySet:
		for _, v := range fv.Set {
			fl.setSum += elementHash(v)
		}
	}
	fl.rehash(entity)
	return fl.hash
}
