package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
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
