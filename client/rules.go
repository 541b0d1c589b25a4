package client

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/gsd-dev/gsd/wire"
)

// UpdateRules replaces a world's rules and returns its new rules version.
// rules is their JSON (docs/RULES.md); expect, when not 0, is the rules
// version being replaced (409 rules_conflict if another update came
// first). An admin call: with a cluster secret set, the client needs it or
// an admin token. Repeated only when the server did nothing.
func (c *Client) UpdateRules(ctx context.Context, world string, rules json.RawMessage, expect uint64) (uint64, error) {
	body := wire.RulesUpdate{Rules: rules, ExpectRulesVersion: expect}
	var out wire.RulesVersion
	err := c.do(ctx, &request{method: http.MethodPut, path: path("worlds", world, "rules"), body: body, mode: retryUnapplied, write: true}, &out)
	return out.RulesVersion, err
}
