package main

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestWorldRulesReplacesAWorldsRules(t *testing.T) {
	addr := startNode(t)
	with := func(args ...string) []string { return append([]string{"--addr", addr, "--timeout", "30s"}, args...) }
	mustRun(t, with("world", "create", "arena")...)
	out := mustRun(t, with("world", "rules", "arena", `{"strict":true,"fields":{"score":{"policy":"counter"}}}`)...)
	require.JSONEq(t, `{"world":"arena","rules_version":2}`, out)
	out = mustRun(t, with("world", "rules", "arena", `{"strict":true,"fields":{"score":{"policy":"counter"}}}`, "--expect", "2")...)
	require.JSONEq(t, `{"world":"arena","rules_version":3}`, out)

	code, _, errOut := ctl(t, "", with("world", "rules", "arena", `{}`, "--expect", "2")...)
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "rules_conflict (HTTP 409)")
	code, _, errOut = ctl(t, "", with("world", "rules", "arena", `{"teams":{"from":"claim"}}`)...)
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "malformed (HTTP 400)")
	code, _, errOut = ctl(t, "", with("world", "rules", "arena", `{`)...)
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "not JSON")
	require.Contains(t, errOut, "gsdctl --help", "a usage error")
	code, _, _ = ctl(t, "", with("world", "rules", "arena", "@/nonexistent/rules.json")...)
	require.Equal(t, 1, code)
}
