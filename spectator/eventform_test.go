package spectator

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// ParseEventForm reads compress= and form= as a node's events route
// always has: gzip only when Accept-Encoding takes it, lean or whole
// lines, anything else malformed; SetHeader and Label say the form.
func TestParseEventFormReadsCompressAndForm(t *testing.T) {
	for _, tc := range []struct {
		query, accept string
		gz, lean      bool
		vary          bool
		form, comp    string
	}{
		{"", "gzip", false, false, false, "whole", "none"},
		{"compress=gzip", "", false, false, true, "whole", "none"},
		{"compress=gzip", "gzip", true, false, true, "whole", "gzip"},
		{"compress=gzip", "br, GZIP;q=0.5", true, false, true, "whole", "gzip"},
		{"compress=gzip", "gzip;q=0", false, false, true, "whole", "none"},
		{"compress=gzip", "gzip; q=0.000", false, false, true, "whole", "none"},
		{"compress=gzip", "gzip;level=1;q=0.", false, false, true, "whole", "none"},
		{"compress=gzip", "deflate", false, false, true, "whole", "none"},
		{"form=lean", "", false, true, false, "lean", "none"},
		{"form=whole&compress=gzip", "gzip", true, false, true, "whole", "gzip"},
		{"form=lean&compress=gzip", "gzip", true, true, true, "lean", "gzip"},
	} {
		r := httptest.NewRequest(http.MethodGet, "/v1/worlds/w/events?"+tc.query, nil)
		if tc.accept != "" {
			r.Header.Set("Accept-Encoding", tc.accept)
		}
		f, err := ParseEventForm(r)
		require.NoError(t, err, tc.query)
		require.Equal(t, tc.gz, f.Gzip, "%s %s", tc.query, tc.accept)
		require.Equal(t, tc.lean, f.Lean, tc.query)
		h := http.Header{}
		f.SetHeader(h)
		require.Equal(t, tc.vary, h.Get("Vary") == "Accept-Encoding", tc.query)
		require.Equal(t, tc.gz, h.Get("Content-Encoding") == "gzip", tc.query)
		require.Equal(t, tc.lean, h.Get(wire.EventFormHeader) == wire.EventFormLean, tc.query)
		form, comp := f.Label()
		require.Equal(t, tc.form, form, tc.query)
		require.Equal(t, tc.comp, comp, tc.query)
	}
	for _, q := range []string{"compress=br", "form=tiny", "form=LEAN"} {
		_, err := ParseEventForm(httptest.NewRequest(http.MethodGet, "/v1/worlds/w/events?"+q, nil))
		require.ErrorIs(t, err, wire.ErrMalformed, q)
	}
}

// AppendLine writes a line in the form: lean cut from the whole one, or
// the whole one; NewEventGzip's stream decodes to what was written.
func TestEventFormAppendLineAndGzip(t *testing.T) {
	whole := []byte(`{"world":"w","seq":2,"versions":{"e":{"x":2}},"changes":[{"entity":"e","field":"x","value":1,"version":2}]}` + "\n")
	require.Equal(t, string(whole), string(EventForm{}.AppendLine(nil, whole)))
	require.Equal(t, string(wire.AppendLeanForm(nil, whole)), string(EventForm{Lean: true}.AppendLine(nil, whole)))
	var buf bytes.Buffer
	zw := NewEventGzip(&buf)
	_, err := zw.Write(whole)
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	zr, err := gzip.NewReader(&buf)
	require.NoError(t, err)
	got, err := io.ReadAll(zr)
	require.NoError(t, err)
	require.Equal(t, string(whole), string(got))
}
