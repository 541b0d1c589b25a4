package jepsen

import (
	"context"
	"fmt"
	"testing"

	"github.com/gsd-dev/gsd/client"
	"github.com/stretchr/testify/require"
)

// A write refused with a 4xx after an attempt that may have applied is
// unknown, not failed: the refusal says nothing about the earlier attempt.
func TestWriteOutcomeRefusalAfterAnUnknownAttemptIsUnknown(t *testing.T) {
	moved := &client.Error{Status: 421, Code: client.CodeWorldMoved}
	require.Equal(t, Fail, writeOutcome(moved))
	require.Equal(t, Fail, writeOutcome(&client.Error{Status: 400, Code: "malformed"}))
	require.Equal(t, Fail, writeOutcome(context.DeadlineExceeded))
	require.Equal(t, Unknown, writeOutcome(fmt.Errorf("%w: %w", client.ErrOutcomeUnknown, moved)))
	require.Equal(t, Unknown, writeOutcome(&client.Error{Status: 503, Code: client.CodeOutcomeUnknown}))
}
