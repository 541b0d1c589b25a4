package shard

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"

	"github.com/hashicorp/raft"
)

// Map is a shard map: the nodes, the shards (Raft groups) and their
// voters, and which shard holds which world. It comes from configuration
// (LoadMap), or from the meta group (shard/meta), which publishes a new
// one with each change; a Map is not modified once in use.
//
// A world the map does not list lives on the shard its name hashes to
// (ShardOf). Adding or removing a shard changes where unlisted worlds
// hash to, and nothing moves their state yet (world migration is
// planned): list a cluster's existing worlds before changing its shards.
type Map struct {
	// Membership is the group that holds the cluster's node table: the
	// Router sends joins, removals and leadership transfers (world "")
	// there. gsd runs it as group 0; it need not hold worlds.
	Membership uint64 `json:"membership"`
	// Nodes are the cluster's nodes by id: the addresses shards form on
	// and the HTTP address requests for a shard's leader go to.
	Nodes map[string]MapNode `json:"nodes"`
	// Shards are the groups that hold worlds; Validate sorts them by id.
	Shards []MapShard `json:"shards"`
	// Worlds places worlds on shards by name, ahead of the hash.
	Worlds map[string]uint64 `json:"worlds,omitempty"`
}

// MapNode is one node's addresses.
type MapNode struct {
	Raft string `json:"raft"` // the node's Raft (mux) address
	HTTP string `json:"http"` // the node's HTTP address: host:port, or a base URL (https:// with TLS)
}

// MapShard is one shard: a Raft group and the nodes that are its voters.
type MapShard struct {
	ID     uint64   `json:"id"`
	Voters []string `json:"voters"`
}

// ParseMap decodes a JSON shard map and validates it. Unknown fields are
// errors, so a misspelt key does not silently change placement.
func ParseMap(b []byte) (*Map, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var m Map
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadMap, err)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// LoadMap reads and parses the shard map file at path.
func LoadMap(path string) (*Map, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("shard map: %w", err)
	}
	m, err := ParseMap(b)
	if err != nil {
		return nil, fmt.Errorf("shard map %s: %w", path, err)
	}
	return m, nil
}

// Validate checks the map and sorts its shards by id. Every error wraps
// ErrBadMap.
func (m *Map) Validate() error {
	var errs []error
	for id, n := range m.Nodes {
		if id == "" {
			errs = append(errs, errors.New("a node with an empty id"))
		}
		if _, _, err := net.SplitHostPort(n.Raft); err != nil {
			errs = append(errs, fmt.Errorf("node %s: raft address %q: %v", id, n.Raft, err))
		}
		if err := CheckHTTPAddr(n.HTTP); err != nil {
			errs = append(errs, fmt.Errorf("node %s: http address %q: %v", id, n.HTTP, err))
		}
	}
	if len(m.Shards) == 0 {
		errs = append(errs, errors.New("no shards"))
	}
	slices.SortFunc(m.Shards, func(a, b MapShard) int { return cmpUint(a.ID, b.ID) })
	for i, s := range m.Shards {
		if i > 0 && m.Shards[i-1].ID == s.ID {
			errs = append(errs, fmt.Errorf("shard %d listed twice", s.ID))
		}
		if s.ID == MetaGroup {
			errs = append(errs, fmt.Errorf("shard id %d is reserved for the meta group", s.ID))
		}
		if len(s.Voters) == 0 {
			errs = append(errs, fmt.Errorf("shard %d has no voters", s.ID))
		}
		seen := make(map[string]bool, len(s.Voters))
		for _, v := range s.Voters {
			if _, ok := m.Nodes[v]; !ok {
				errs = append(errs, fmt.Errorf("shard %d: voter %q is not in nodes", s.ID, v))
			}
			if seen[v] {
				errs = append(errs, fmt.Errorf("shard %d: voter %q listed twice", s.ID, v))
			}
			seen[v] = true
		}
	}
	for w, g := range m.Worlds {
		if w == "" {
			errs = append(errs, errors.New("worlds: an empty world name"))
		}
		if _, ok := m.Shard(g); !ok {
			errs = append(errs, fmt.Errorf("world %q is placed on shard %d, which is not listed", w, g))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrBadMap, err)
	}
	return nil
}

// CheckHTTPAddr checks a node's HTTP address: host:port, or a base URL
// (http:// or https://, as with cluster TLS) with a host:port.
func CheckHTTPAddr(addr string) error {
	if !strings.Contains(addr, "://") {
		_, _, err := net.SplitHostPort(addr)
		return err
	}
	u, err := url.Parse(addr)
	if err != nil {
		return err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("scheme %q: want http or https", u.Scheme)
	}
	if u.Port() == "" || u.Hostname() == "" {
		return errors.New("the URL needs a host and a port")
	}
	return nil
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Shard returns the shard with id.
func (m *Map) Shard(id uint64) (MapShard, bool) {
	i, ok := slices.BinarySearchFunc(m.Shards, id, func(s MapShard, id uint64) int { return cmpUint(s.ID, id) })
	if !ok {
		return MapShard{}, false
	}
	return m.Shards[i], true
}

// ShardOf returns the shard that holds world: the one Worlds names, else
// the FNV-1a hash of the name over the shards in id order. The map must
// have been validated and hold a shard (a meta group's may not yet: the
// Router checks).
func (m *Map) ShardOf(world string) uint64 {
	if g, ok := m.Worlds[world]; ok {
		return g
	}
	h := fnv.New64a()
	h.Write([]byte(world))
	return m.Shards[h.Sum64()%uint64(len(m.Shards))].ID
}

// ShardsOf returns the ids of the shards node is a voter of, in order.
func (m *Map) ShardsOf(node string) []uint64 {
	var ids []uint64
	for _, s := range m.Shards {
		if slices.Contains(s.Voters, node) {
			ids = append(ids, s.ID)
		}
	}
	return ids
}

// Voters returns shard's voters as a Raft configuration, for bootstrap.
func (m *Map) Voters(shard uint64) ([]raft.Server, error) {
	s, ok := m.Shard(shard)
	if !ok {
		return nil, fmt.Errorf("%w: %d", ErrUnknownGroup, shard)
	}
	servers := make([]raft.Server, 0, len(s.Voters))
	for _, v := range s.Voters {
		servers = append(servers, raft.Server{
			Suffrage: raft.Voter, ID: raft.ServerID(v), Address: raft.ServerAddress(m.Nodes[v].Raft),
		})
	}
	return servers, nil
}
