package edge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/store"
)

// ArchivePage is the answer of GET /internal/v1/worlds/{world}/archive:
// up to limit consecutive events of world from seq From on, each in the
// archive's encoding (fsm.EncodeEvent, the bytes the node stores). From is
// the seq asked for, or the oldest after it that the node holds when its
// retention deleted that one; no events: it holds nothing at or after it. A node whose event archive lost
// a range refills it from these pages (store.RunRefill), after checking
// them against its audit tree.
type ArchivePage struct {
	// Group is the group whose replica answered, when the request named
	// one (HeaderGroup: FetchGroupArchive); nodes from before group
	// addressing leave it out.
	Group  string   `json:"group,omitempty"`
	World  string   `json:"world"`
	From   uint64   `json:"from"`
	Events [][]byte `json:"events"`
}

// Bounds of an archive page: events per page (the limit parameter's
// default and maximum) and about how many bytes of events one holds.
const (
	DefaultArchivePage = 256
	MaxArchivePage     = 1024
	ArchivePageBytes   = 4 << 20
)

// InternalArchivePath is the path of the archive page of world from seq
// from, of at most limit events.
func InternalArchivePath(world string, from uint64, limit int) string {
	return InternalWorldPath(world, "/archive") + "?from=" + strconv.FormatUint(from, 10) + "&limit=" + strconv.Itoa(limit)
}

// FetchArchive asks node for up to max archived events of world from seq
// from on (store.RefillPeers), from the group node's map places world on.
// The events are decoded, not checked: the refiller verifies them before
// it stores any.
func (s *Core) FetchArchive(ctx context.Context, node fsm.NodeInfo, world string, from uint64, max int) ([]*fsm.Event, error) {
	_, evs, err := s.fetchArchive(ctx, Route{Node: node.ID, Addr: node.HTTPAddr}, world, from, max)
	return evs, err
}

// FetchGroupArchive is FetchArchive from node's replica of group, named
// in the request (HeaderGroup), whichever group node's map places world
// on: a shard's refill reads the same Raft group it refills. A node that
// does not run the group or serves no archive, and a node from before
// group addressing (no such route: 404; or a page that does not name the
// group back, read from the group its map places world on), is refused
// with store.ErrNotServed, never used: the refiller logs it. A node that
// runs the group but holds no such world in it answers unknown_world:
// store.ErrNotServed and fsm.ErrUnknownWorld, so the log says which.
func (s *Core) FetchGroupArchive(ctx context.Context, group uint64, node fsm.NodeInfo, world string, from uint64, max int) ([]*fsm.Event, error) {
	g := strconv.FormatUint(group, 10)
	page, evs, err := s.fetchArchive(ctx, Route{GroupID: g, Node: node.ID, Addr: node.HTTPAddr}, world, from, max)
	if re, ok := errors.AsType[*RemoteError](err); ok && re.Code == fsm.CodeUnknownWorld {
		// A current node that runs the group but holds no such world in
		// it (its replica has not applied the world's creation or import
		// yet, or the world left the group): nothing to serve, and not a
		// node that does not serve the group.
		return nil, fmt.Errorf("%w: %w: node %s holds no world %s in group %s: %w", store.ErrNotServed, fsm.ErrUnknownWorld, node.ID, world, g, err)
	}
	if re, ok := errors.AsType[*RemoteError](err); ok && (re.Status == http.StatusNotFound || re.Code == fsm.CodeNotSupported) {
		return nil, fmt.Errorf("%w: node %s does not serve group %s by name: %w", store.ErrNotServed, node.ID, g, err)
	}
	if err != nil {
		return nil, err
	}
	if page.Group != g {
		return nil, fmt.Errorf("%w: node %s answered for group %q, not %s (a gsd from before group addressing)", store.ErrNotServed, node.ID, page.Group, g)
	}
	return evs, nil
}

// fetchArchive fetches and decodes one archive page through rt.
func (s *Core) fetchArchive(ctx context.Context, rt Route, world string, from uint64, max int) (ArchivePage, []*fsm.Event, error) {
	var page ArchivePage
	if rt.Addr == "" {
		return page, nil, fmt.Errorf("%w: node %s has no HTTP address", ErrUnavailable, rt.Node)
	}
	err := s.send(ctx, rt, http.MethodGet, InternalArchivePath(world, from, max), nil, "",
		func(_ int, r io.Reader) error {
			// base64 in JSON: 4/3 of the bytes, and a margin for the rest.
			b, err := io.ReadAll(io.LimitReader(r, 2*ArchivePageBytes))
			if err != nil {
				return ForwardError(rt.Node, err, false)
			}
			if err := json.Unmarshal(b, &page); err != nil {
				return fmt.Errorf("%w: node %s: undecodable archive page: %v", ErrInternal, rt.Node, err)
			}
			return nil
		})
	if err != nil {
		return page, nil, err
	}
	out := make([]*fsm.Event, len(page.Events))
	for i, rec := range page.Events {
		ev, err := fsm.DecodeEvent(rec)
		if err != nil {
			return page, nil, fmt.Errorf("node %s: archive page of %s from %d, event %d: %w", rt.Node, world, from, i, err)
		}
		out[i] = ev
	}
	return page, out, nil
}

// ArchiveReader is what the archive route reads: *store.Store. A backend
// without it (a test's fake) answers the route not_supported.
type ArchiveReader interface {
	ArchiveRecords(world string, from uint64, limit, maxBytes int) (first uint64, recs [][]byte, err error)
}

// GroupArchiveReader is what the archive route reads when the request
// names a group (HeaderGroup): a node's replica of that group
// (*shard.Backend). A backend without it answers not_supported.
type GroupArchiveReader interface {
	GroupArchiveRecords(group uint64, world string, from uint64, limit, maxBytes int) (first uint64, recs [][]byte, err error)
}

// ParseArchivePage parses the archive route's from (>= 1, required) and
// limit (1..MaxArchivePage, DefaultArchivePage when absent).
func ParseArchivePage(q url.Values) (from uint64, limit int, err error) {
	from, err = strconv.ParseUint(q.Get("from"), 10, 64)
	if err != nil || from == 0 {
		return 0, 0, fmt.Errorf("%w: from must be a seq >= 1, got %q", fsm.ErrMalformed, q.Get("from"))
	}
	limit = DefaultArchivePage
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > MaxArchivePage {
			return 0, 0, fmt.Errorf("%w: limit must be 1..%d, got %q", fsm.ErrMalformed, MaxArchivePage, v)
		}
	}
	return from, limit, nil
}

// The refiller fetches through the edge's peer client.
var _ store.RefillPeers = (*Core)(nil)
