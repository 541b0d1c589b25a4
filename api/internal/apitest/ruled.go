package apitest

import (
	"sync"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/store"
)

// RuledStore is a store whose worlds show the test's rules, at a version
// the test moves: the read paths take a world's rules from Worlds, so a
// test of one path hands in rules (and rules changes) there.
type RuledStore struct {
	*store.Store
	mu      sync.Mutex
	rules   fsm.Rules
	version uint64
}

// NewRuledStore returns st showing rules, at rules version 1.
func NewRuledStore(st *store.Store, rules fsm.Rules) *RuledStore {
	return &RuledStore{Store: st, rules: rules, version: 1}
}

// Worlds is st's worlds with the test's rules and version.
func (r *RuledStore) Worlds() []fsm.WorldInfo {
	infos := r.Store.Worlds()
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range infos {
		infos[i].Rules, infos[i].RulesVersion = r.rules, r.version
	}
	return infos
}

// SetRules shows rules from now on, at the next version.
func (r *RuledStore) SetRules(rules fsm.Rules) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rules = rules
	r.version++
}

// BumpRules moves the version, the rules staying.
func (r *RuledStore) BumpRules() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.version++
}

// Version is the rules version the worlds show.
func (r *RuledStore) Version() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.version
}
