package play

import (
	"bytes"
	"encoding/json"
	"testing"

	"pgregory.net/rapid"
)

func TestWriteJSONStringWritesWhatJSONMarshalDoes(t *testing.T) {
	for _, s := range []string{"", "p1", "a b", `q"uote`, `back\slash`, "<tag>&", "tab\there", "nl\n", "\x7f", "é", "\u2028", "\xff\xfe", "emoji 🙂"} {
		var b bytes.Buffer
		writeJSONString(&b, s)
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if b.String() != string(want) {
			t.Errorf("writeJSONString(%q) = %s, json.Marshal: %s", s, b.String(), want)
		}
	}
	rapid.Check(t, func(t *rapid.T) {
		s := rapid.OneOf(rapid.String(), rapid.StringMatching(`[ -~]{0,12}`), rapid.Map(rapid.SliceOfN(rapid.Byte(), 0, 8), func(b []byte) string { return string(b) })).Draw(t, "s")
		var b bytes.Buffer
		b.WriteString("x") // a buffer that holds something already
		writeJSONString(&b, s)
		want, _ := json.Marshal(s)
		if b.String() != "x"+string(want) {
			t.Fatalf("writeJSONString(%q) = %s, json.Marshal: %s", s, b.String()[1:], want)
		}
	})
}

func TestWriteUintWritesDecimal(t *testing.T) {
	var b bytes.Buffer
	for _, v := range []uint64{0, 7, 10, 18446744073709551615} {
		writeUint(&b, v)
		b.WriteByte(',')
	}
	if got := b.String(); got != "0,7,10,18446744073709551615," {
		t.Errorf("writeUint wrote %q", got)
	}
}
