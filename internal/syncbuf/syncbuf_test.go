package syncbuf

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestConcurrentWritesAllLand(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				_, err := b.Write([]byte("x"))
				require.NoError(t, err)
				_ = b.String()
			}
		})
	}
	wg.Wait()
	require.Len(t, b.String(), 800)
}
