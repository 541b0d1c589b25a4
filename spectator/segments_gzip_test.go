package spectator

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestAcceptsGzipReadsTheQualities(t *testing.T) {
	for h, want := range map[string]bool{
		"":                   false,
		"gzip":               true,
		"GZIP":               true,
		"br, gzip;q=0.5":     true,
		"gzip;q=0":           false,
		"gzip; q=0.0":        false,
		"gzip;q=x":           false,
		"deflate, identity":  false,
		"gzipped":            false,
		"identity;q=1, gzip": true,
	} {
		r, err := http.NewRequest(http.MethodGet, "/", nil)
		require.NoError(t, err)
		if h != "" {
			r.Header.Set("Accept-Encoding", h)
		}
		require.Equal(t, want, acceptsGzip(r), "%q", h)
	}
}

func TestSegmentGzipIsMadeOnceWithAnETagOfItsOwn(t *testing.T) {
	s := &Segment{Data: bytes.Repeat([]byte(`{"type":"delta","world":"w"}`+"\n"), 50), ETag: `"abc"`}
	gz, etag := s.Gzip()
	require.Equal(t, `"abc-gzip"`, etag)
	require.Less(t, len(gz), len(s.Data)/4)
	again, _ := s.Gzip()
	require.Same(t, &gz[0], &again[0])
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	require.NoError(t, err)
	plain, err := io.ReadAll(zr)
	require.NoError(t, err)
	require.Equal(t, s.Data, plain)
}
