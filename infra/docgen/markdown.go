package main

import (
	"regexp"
	"strings"
	"unicode"
)

var (
	inlineLink = regexp.MustCompile(`!?\[([^\]]*)\]\([^)]*\)`)
	spaces     = regexp.MustCompile(`\s+`)
)

// slug is the anchor GitHub gives a heading: its text lowercased, inline
// markup and punctuation other than '-' and '_' dropped, each space a
// '-'. Repeated headings get -1, -2, ... (see anchors).
func slug(heading string) string {
	text := inlineLink.ReplaceAllString(heading, "$1")
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(text)) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.Is(unicode.Mn, r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// cell makes text safe inside a markdown table cell.
func cell(text string) string {
	return strings.ReplaceAll(spaces.ReplaceAllString(text, " "), "|", `\|`)
}

// wrap breaks text into lines of at most width bytes where it can.
func wrap(text string, width int) string {
	var b strings.Builder
	n := 0
	for _, w := range strings.Fields(text) {
		switch {
		case n == 0:
		case n+1+len(w) > width:
			b.WriteByte('\n')
			n = 0
		default:
			b.WriteByte(' ')
			n++
		}
		b.WriteString(w)
		n += len(w)
	}
	return b.String()
}
