// Package api is the edge.
package api

import (
	"example.com/tiny/store"
	"example.com/tiny/wire"
)

// Handle serves one event.
func Handle(e wire.Event) (uint64, error) { return store.Apply(e) }
