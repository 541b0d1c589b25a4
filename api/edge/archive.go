package edge

import (
	"context"
	"encoding/json"
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
// from on (store.RefillPeers). The events are decoded, not checked: the
// refiller verifies them before it stores any.
func (s *Core) FetchArchive(ctx context.Context, node fsm.NodeInfo, world string, from uint64, max int) ([]*fsm.Event, error) {
	if node.HTTPAddr == "" {
		return nil, fmt.Errorf("%w: node %s has no HTTP address", ErrUnavailable, node.ID)
	}
	var page ArchivePage
	err := s.send(ctx, Route{Node: node.ID, Addr: node.HTTPAddr}, http.MethodGet, InternalArchivePath(world, from, max), nil, "",
		func(_ int, r io.Reader) error {
			// base64 in JSON: 4/3 of the bytes, and a margin for the rest.
			b, err := io.ReadAll(io.LimitReader(r, 2*ArchivePageBytes))
			if err != nil {
				return ForwardError(node.ID, err, false)
			}
			if err := json.Unmarshal(b, &page); err != nil {
				return fmt.Errorf("%w: node %s: undecodable archive page: %v", ErrInternal, node.ID, err)
			}
			return nil
		})
	if err != nil {
		return nil, err
	}
	out := make([]*fsm.Event, len(page.Events))
	for i, rec := range page.Events {
		ev, err := fsm.DecodeEvent(rec)
		if err != nil {
			return nil, fmt.Errorf("node %s: archive page of %s from %d, event %d: %w", node.ID, world, from, i, err)
		}
		out[i] = ev
	}
	return out, nil
}

// ArchiveReader is what the archive route reads: *store.Store. A backend
// without it (a test's fake) answers the route not_supported.
type ArchiveReader interface {
	ArchiveRecords(world string, from uint64, limit, maxBytes int) (first uint64, recs [][]byte, err error)
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
