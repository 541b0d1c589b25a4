package main

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
)

// docTag is the word in the info string of the doc's fenced block that
// holds the rules: ```text import-rules.
const docTag = "import-rules"

// docBlock finds the doc's one fenced block tagged docTag and returns the
// byte offsets of its content (from the line after the opening fence to
// the closing fence) and the line number of its first content line.
func docBlock(doc []byte) (start, end, line int, err error) {
	found := 0
	lineNo, open, fence := 0, -1, ""
	for off := 0; off < len(doc); {
		next := bytes.IndexByte(doc[off:], '\n')
		if next < 0 {
			next = len(doc) - off
		} else {
			next++
		}
		text := strings.TrimRight(string(doc[off:off+next]), "\r\n")
		lineNo++
		trimmed := strings.TrimSpace(text)
		switch {
		case fence == "" && (strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~")):
			fence = trimmed[:len(trimmed)-len(strings.TrimLeft(trimmed, trimmed[:1]))]
			info := strings.Fields(strings.TrimLeft(trimmed, fence[:1]))
			if slices.Contains(info, docTag) {
				found++
				open, start, line = 0, off+next, lineNo+1
			}
		case fence != "" && strings.HasPrefix(trimmed, fence) && strings.Trim(trimmed, fence[:1]) == "":
			if open == 0 {
				end, open = off, 1
			}
			fence = ""
		}
		off += next
	}
	switch {
	case found == 0:
		return 0, 0, 0, fmt.Errorf("no fenced block tagged %s (```text %s) holds the rules", docTag, docTag)
	case found > 1:
		return 0, 0, 0, fmt.Errorf("%d fenced blocks are tagged %s; keep one", found, docTag)
	case open == 0:
		return 0, 0, 0, fmt.Errorf("the fenced block tagged %s at line %d is not closed", docTag, line-1)
	}
	return start, end, line, nil
}

// checkDoc returns an error naming the first line where the doc's copy of
// the rules differs from the rules file.
func checkDoc(rulesName string, rules []byte, docName string, doc []byte) error {
	start, end, line, err := docBlock(doc)
	if err != nil {
		return fmt.Errorf("%s: %w", docName, err)
	}
	want := lines(rules)
	got := lines(doc[start:end])
	for i := 0; i < max(len(want), len(got)); i++ {
		if i >= len(want) || i >= len(got) || want[i] != got[i] {
			return fmt.Errorf("%s:%d differs from %s:%d: the doc must show the rules verbatim (go run ./scripts/archcheck -fix-doc copies them)",
				docName, line+i, rulesName, i+1)
		}
	}
	return nil
}

// fixDoc returns doc with its rules block replaced by rules.
func fixDoc(rules, doc []byte) ([]byte, error) {
	start, end, _, err := docBlock(doc)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.Write(doc[:start])
	for _, l := range lines(rules) {
		b.WriteString(l + "\n")
	}
	b.Write(doc[end:])
	return b.Bytes(), nil
}

// lines splits text into lines without their line ends; a last line end
// adds no empty line.
func lines(text []byte) []string {
	s := strings.ReplaceAll(string(text), "\r\n", "\n")
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}
