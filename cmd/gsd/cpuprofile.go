package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
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
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
