package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
)

// peerFile resolves peers' Raft addresses from a JSON file {"id": "host:port"}
// (store.Config.ResolvePeer). The fault-injection suite rewrites it to route
// every link through a proxy, so a lookup re-reads the file when its size,
// modification time or identity changed, and SIGHUP forces a re-read. A file
// that is missing or broken after a good read leaves the last good map in
// place.
type peerFile struct {
	path string
	log  *slog.Logger

	mu    sync.Mutex
	stat  os.FileInfo // of the last read attempt; nil when missing
	addrs map[string]string
}

// newPeerFile reads path once; a missing file is an empty map (the suite may
// write it later), a malformed one an error.
func newPeerFile(path string, log *slog.Logger) (*peerFile, error) {
	p := &peerFile{path: path, log: log, addrs: map[string]string{}}
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		log.Warn("peer address file does not exist yet", "path", path)
		return p, nil
	}
	if err != nil {
		return nil, fmt.Errorf("peer address file: %w", err)
	}
	addrs, err := readPeerFile(path)
	if err != nil {
		return nil, fmt.Errorf("peer address file: %w", err)
	}
	p.stat, p.addrs = fi, addrs
	return p, nil
}

func readPeerFile(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	addrs := map[string]string{}
	if err := json.Unmarshal(b, &addrs); err != nil {
		return nil, fmt.Errorf("%s: want a JSON object of node id to raft address: %w", path, err)
	}
	return addrs, nil
}

// lookup is store.Config.ResolvePeer.
func (p *peerFile) lookup(id string) (string, bool) {
	p.reload(false)
	p.mu.Lock()
	defer p.mu.Unlock()
	a, ok := p.addrs[id]
	return a, ok && a != ""
}

// reload re-reads the file if it changed, or always when force.
func (p *peerFile) reload(force bool) {
	fi, err := os.Stat(p.path)
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		if p.stat != nil || force {
			p.log.Warn("peer address file unreadable; keeping the last addresses", "path", p.path, "err", err)
		}
		p.stat = nil
		return
	}
	if !force && p.stat != nil && os.SameFile(fi, p.stat) && fi.Size() == p.stat.Size() && fi.ModTime().Equal(p.stat.ModTime()) {
		return
	}
	p.stat = fi
	addrs, err := readPeerFile(p.path)
	if err != nil {
		// A writer may be half-way through; its next write changes the
		// modification time and the next lookup reads the file again.
		p.log.Warn("peer address file unreadable; keeping the last addresses", "path", p.path, "err", err)
		return
	}
	p.addrs = addrs
	p.log.Info("peer addresses loaded", "path", p.path, "peers", len(addrs))
}
