package main

import (
	"strconv"
	"unicode/utf8"
)

// printable returns s as the tools print it for people. A key may hold any bytes (docs/tracker.md,
// "Keys"), so a key with a newline would otherwise print as two lines and one with an escape
// sequence could drive the terminal. s comes back unchanged when it is valid UTF-8 of printable
// characters (strconv.IsPrint: letters, marks, numbers, punctuation, symbols and the ASCII space)
// and does not begin with a double quote; otherwise it comes back Go-quoted ("a\nb", "\x00k").
// Output that begins with a double quote is therefore always a quoted string, which
// strconv.Unquote turns back into the exact bytes.
func printable(s string) string {
	if len(s) > 0 && s[0] == '"' {
		return strconv.Quote(s)
	}
	for i, r := range s {
		if r == utf8.RuneError && !validRuneAt(s, i) || !strconv.IsPrint(r) {
			return strconv.Quote(s)
		}
	}
	return s
}

// validRuneAt reports whether s[i:] starts with an encoded U+FFFD rather than an invalid byte.
func validRuneAt(s string, i int) bool {
	_, size := utf8.DecodeRuneInString(s[i:])
	return size > 1
}
