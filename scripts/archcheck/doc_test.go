package main

import (
	"strings"
	"testing"
)

const rulesText = "# r\nmay-import a\n"

func TestDocCheckFindsTheTaggedBlockAmongOthers(t *testing.T) {
	doc := "# D\n\n```go\nx := 1\n```\n\n````text import-rules\n# r\nmay-import a\n````\n\n~~~\n```text import-rules\n~~~\n"
	if err := checkDoc("r.txt", []byte(rulesText), "d.md", []byte(doc)); err != nil {
		t.Fatal(err)
	}
	crlf := strings.ReplaceAll("```text import-rules\n# r\nmay-import a\n```\n", "\n", "\r\n")
	if err := checkDoc("r.txt", []byte(rulesText), "d.md", []byte(crlf)); err != nil {
		t.Errorf("CRLF line ends: %v", err)
	}
}

func TestDocCheckNamesTheFirstDifferingLine(t *testing.T) {
	for _, c := range []struct{ doc, want string }{
		{"x\n```text import-rules\n# r\nmay-import b\n```\n", "d.md:4 differs from r.txt:2: "},
		{"```text import-rules\n# r\n```\n", "d.md:3 differs from r.txt:2: "},
		{"```text import-rules\n# r\nmay-import a\nmay-import b\n```\n", "d.md:4 differs from r.txt:3: "},
		{"```text import-rules\n```\n", "d.md:2 differs from r.txt:1: "},
		{"```text\n# r\nmay-import a\n```\n", "d.md: no fenced block tagged import-rules"},
		{"```text import-rules\n# r\n```\n```import-rules\n```\n", "d.md: 2 fenced blocks are tagged import-rules; keep one"},
		{"a\n```text import-rules\n# r\nmay-import a\n", "d.md: the fenced block tagged import-rules at line 2 is not closed"},
	} {
		err := checkDoc("r.txt", []byte(rulesText), "d.md", []byte(c.doc))
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("doc %q: error %v, want %q", c.doc, err, c.want)
		}
	}
}

func TestFixDocReplacesOnlyTheBlock(t *testing.T) {
	doc := "before\n```text import-rules\nold\n```\nafter\n"
	got, err := fixDoc([]byte(rulesText), []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if want := "before\n```text import-rules\n# r\nmay-import a\n```\nafter\n"; string(got) != want {
		t.Errorf("fixed doc:\n%s\nwant:\n%s", got, want)
	}
	got, err = fixDoc(nil, []byte(doc))
	if err != nil || string(got) != "before\n```text import-rules\n```\nafter\n" {
		t.Errorf("empty rules: %q, %v", got, err)
	}
	if _, err := fixDoc([]byte(rulesText), []byte("no block\n")); err == nil {
		t.Error("fixDoc without a block succeeded")
	}
}
