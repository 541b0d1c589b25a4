package spectator

import (
	"bytes"
	"compress/gzip"
	"net/http"
	"strconv"
	"strings"
)

// Gzip returns the segment's data gzipped, made the first time a client
// that accepts gzip asks (once for every client and cache after it), and
// that representation's ETag. A segment is NDJSON of frames that repeat
// their keys: on the bandwidth ruler's frames gzip keeps a fifth to a
// quarter of the bytes.
func (s *Segment) Gzip() ([]byte, string) {
	s.gzOnce.Do(func() {
		var buf bytes.Buffer
		w := gzip.NewWriter(&buf)
		// Writes to a bytes.Buffer do not fail.
		_, _ = w.Write(s.Data)
		_ = w.Close()
		s.gz = buf.Bytes()
	})
	return s.gz, strings.TrimSuffix(s.ETag, `"`) + `-gzip"`
}

// acceptsGzip reports whether r's Accept-Encoding names gzip with a
// non-zero quality.
func acceptsGzip(r *http.Request) bool {
	for _, h := range r.Header.Values("Accept-Encoding") {
		for tok := range strings.SplitSeq(h, ",") {
			name, params, _ := strings.Cut(tok, ";")
			if !strings.EqualFold(strings.TrimSpace(name), "gzip") {
				continue
			}
			q, ok := strings.CutPrefix(strings.TrimSpace(params), "q=")
			if !ok {
				return true
			}
			if v, err := strconv.ParseFloat(q, 64); err == nil && v > 0 {
				return true
			}
		}
	}
	return false
}
