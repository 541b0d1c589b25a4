package main

import (
	"path/filepath"

	"github.com/gsd-dev/gsd/internal/cpuprofile"
)

// startCPUProfile starts a CPU profile of the whole run into path (relative
// paths are taken in the data dir, so the nodes of a local cluster each
// write their own) and returns the function that ends it. An empty path
// profiles nothing.
func startCPUProfile(path, dataDir string) (func(), error) {
	if path == "" {
		return func() {}, nil
	}
	if !filepath.IsAbs(path) {
		path = filepath.Join(dataDir, path)
	}
	return cpuprofile.Start(path)
}
