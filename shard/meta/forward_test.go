package meta

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// A forwarded answer keeps the sentinels of the leader's error.
func TestForwardAnswersKeepTheirSentinels(t *testing.T) {
	for _, err := range []error{
		fmt.Errorf("%w: x", ErrBadCommand),
		fmt.Errorf("%w: %w: no shard 3", ErrRefused, ErrNotFound),
		fmt.Errorf("%w: shard 3 exists", ErrRefused),
		fmt.Errorf("%w: lost", ErrNotLeader),
	} {
		_, got := answerOf(Result{}, err).result()
		for _, s := range []error{ErrBadCommand, ErrRefused, ErrNotFound, ErrNotLeader} {
			require.Equal(t, errors.Is(err, s), errors.Is(got, s), "%v: %v", err, s)
		}
		require.ErrorContains(t, got, err.Error())
	}
	res, err := answerOf(Result{Shard: 2, Voters: []string{"a"}}, nil).result()
	require.NoError(t, err)
	require.Equal(t, Result{Shard: 2, Voters: []string{"a"}}, res)
	_, err = answerOf(Result{}, errors.New("disk")).result()
	require.ErrorContains(t, err, "disk")
	require.NotErrorIs(t, err, ErrRefused)
}
