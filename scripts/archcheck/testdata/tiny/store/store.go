// Package store keeps the state machine on disk.
package store

import (
	"example.com/ext/db"
	"example.com/tiny/fsm"
	"example.com/tiny/wire"
)

// Apply stores one event.
func Apply(e wire.Event) (uint64, error) { return fsm.Apply(e), db.Open() }
