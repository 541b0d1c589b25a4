package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/gsd-dev/gsd/wire"
)

// Backup is a backup being streamed from a node (GET /v1/cluster/backup).
type Backup struct {
	// Index and Term are the Raft position the backup reflects; Node is
	// the node that took it.
	Index, Term uint64
	Node        string
	// Size is the length of Body in bytes; reading Body fails rather than
	// ends early if the stream breaks.
	Size int64
	// Body is the backup; the caller closes it.
	Body io.ReadCloser
	// Group is the group a BackupGroup is of.
	Group uint64

	resp *http.Response // BackupGroup's, for its trailer
}

// Backup asks a node for a backup of its group (an admin call) and returns
// the open stream. Only the request is retried (on another address, as any
// read): once Body is handed over, a broken stream is the caller's error.
func (c *Client) Backup(ctx context.Context) (*Backup, error) {
	r := &request{method: http.MethodGet, path: wire.PathBackup}
	var b *Backup
	err := c.exec(ctx, r, func(ctx context.Context, base string, _ []byte) error {
		req, err := c.newHTTPRequest(ctx, base, r, nil)
		if err != nil {
			return err
		}
		req.Header.Set("Accept", "application/octet-stream")
		resp, err := c.send(req, base)
		if err != nil {
			return err
		}
		index, ierr := strconv.ParseUint(resp.Header.Get(wire.HeaderBackupIndex), 10, 64)
		term, terr := strconv.ParseUint(resp.Header.Get(wire.HeaderBackupTerm), 10, 64)
		if ierr != nil || terr != nil || resp.ContentLength < 0 {
			resp.Body.Close()
			return fmt.Errorf("gsd/client: %s answered a backup without its index, term or length", base)
		}
		b = &Backup{Index: index, Term: term, Node: resp.Header.Get(wire.HeaderBackupNode), Size: resp.ContentLength, Body: resp.Body}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return b, nil
}

// BackupGroup asks for a backup of one group from that group's leader (an
// admin call, GET /v1/cluster/backup?group=ID): nodes that do not lead
// the group answer not_leader and the next address is tried, so give the
// client every node's address. Read Body to its end, then Worlds says
// what the backup holds.
func (c *Client) BackupGroup(ctx context.Context, group uint64) (*Backup, error) {
	r := &request{method: http.MethodGet, path: wire.PathBackup,
		query: url.Values{wire.QueryBackupGroup: {strconv.FormatUint(group, 10)}}}
	var b *Backup
	err := c.exec(ctx, r, func(ctx context.Context, base string, _ []byte) error {
		req, err := c.newHTTPRequest(ctx, base, r, nil)
		if err != nil {
			return err
		}
		req.Header.Set("Accept", "application/octet-stream")
		resp, err := c.send(req, base)
		if err != nil {
			return err
		}
		index, ierr := strconv.ParseUint(resp.Header.Get(wire.HeaderBackupIndex), 10, 64)
		term, terr := strconv.ParseUint(resp.Header.Get(wire.HeaderBackupTerm), 10, 64)
		size, serr := strconv.ParseInt(resp.Header.Get(wire.HeaderBackupSize), 10, 64)
		g, gerr := strconv.ParseUint(resp.Header.Get(wire.HeaderBackupGroup), 10, 64)
		if err := errors.Join(ierr, terr, serr, gerr); err != nil || g != group || size < 0 {
			resp.Body.Close()
			return fmt.Errorf("gsd/client: %s answered a backup of group %d without its group, index, term or size", base, group)
		}
		b = &Backup{Index: index, Term: term, Node: resp.Header.Get(wire.HeaderBackupNode), Size: size, Body: resp.Body, Group: g, resp: resp}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return b, nil
}

// Worlds returns the worlds a BackupGroup's backup holds, with their seqs
// and hashes, which the server sends after the bytes: call it once Body
// was read to its end.
func (b *Backup) Worlds() ([]wire.BackupWorld, error) {
	if b.resp == nil {
		return nil, errors.New("gsd/client: only a group's backup (BackupGroup) lists its worlds")
	}
	raw := b.resp.Trailer.Get(wire.TrailerBackupWorlds)
	if raw == "" {
		return nil, fmt.Errorf("gsd/client: the backup of group %d ended without its worlds (read Body to its end first)", b.Group)
	}
	var worlds []wire.BackupWorld
	if err := json.Unmarshal([]byte(raw), &worlds); err != nil {
		return nil, fmt.Errorf("gsd/client: the worlds of the backup of group %d: %w", b.Group, err)
	}
	return worlds, nil
}
