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
		fmt.Errorf("%w: %w: world w is on shard 2, not 1", ErrRefused, ErrElsewhere),
		fmt.Errorf("%w: member n3 reads 1", ErrGate),
	} {
		_, got := answerOf(Result{}, err).result()
		for _, s := range []error{ErrBadCommand, ErrRefused, ErrNotFound, ErrNotLeader, ErrElsewhere, ErrGate} {
			require.Equal(t, errors.Is(err, s), errors.Is(got, s), "%v: %v", err, s)
		}
		require.ErrorContains(t, got, err.Error())
	}
	res, err := answerOf(Result{Shard: 2, Voters: []string{"a"}, Index: 9}, nil).result()
	require.NoError(t, err)
	require.Equal(t, Result{Shard: 2, Voters: []string{"a"}, Index: 9}, res)
	_, err = answerOf(Result{}, errors.New("disk")).result()
	require.ErrorContains(t, err, "disk")
	require.NotErrorIs(t, err, ErrRefused)
}
