package mogproto

import (
	"strconv"
	"strings"
)

// Arg is one name=value pair of an argument string. Names and values are raw bytes held in strings;
// no charset is assumed.
type Arg struct{ Name, Value string }

// Args is an ordered argument list. Requests and replies keep insertion order, so transcripts are
// reproducible even though the protocol itself gives order no meaning. The zero value is an empty
// list. Lookups are linear, which beats a map at the sizes the protocol uses (a few dozen pairs).
type Args []Arg

// Get returns the value of the first pair called name, or "" when there is none.
func (a Args) Get(name string) string {
	v, _ := a.Lookup(name)
	return v
}

// Lookup returns the value of the first pair called name and whether there is one.
func (a Args) Lookup(name string) (string, bool) {
	if i := a.index(name); i >= 0 {
		return a[i].Value, true
	}
	return "", false
}

// Set replaces the value of the first pair called name, or appends the pair when there is none.
func (a *Args) Set(name, value string) {
	if i := a.index(name); i >= 0 {
		(*a)[i].Value = value
		return
	}
	*a = append(*a, Arg{name, value})
}

// Add appends a pair, even when one with the same name exists.
func (a *Args) Add(name, value string) { *a = append(*a, Arg{name, value}) }

// Int returns the value of name as a decimal integer. It reports false when the pair is missing or
// is not an integer.
func (a Args) Int(name string) (int64, bool) {
	v, ok := a.Lookup(name)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 64)
	return n, err == nil
}

// Indexed returns the value of the numbered pair prefix+i+suffix ("path3", "key_3", "dev3_devid")
// without allocating.
func (a Args) Indexed(prefix string, i int, suffix string) (string, bool) {
	var buf [64]byte
	name := append(buf[:0], prefix...)
	name = strconv.AppendInt(name, int64(i), 10)
	name = append(name, suffix...)
	for j := range a {
		if a[j].Name == string(name) {
			return a[j].Value, true
		}
	}
	return "", false
}

// List reads a counted list such as get_paths' "paths=N&path1=..&pathN=.." (List("paths", "path",
// "")) or list_keys' "key_count=N&key_1=.." (List("key_count", "key_", "")). A missing count gives
// an empty list; a count that is not a non-negative integer, or a missing item, is an ErrProtocol.
func (a Args) List(countKey, prefix, suffix string) ([]string, error) {
	v, ok := a.Lookup(countKey)
	if !ok {
		return nil, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > len(a) {
		return nil, protocolError("bad count", countKey+"="+v)
	}
	out := make([]string, 0, n)
	for i := 1; i <= n; i++ {
		item, ok := a.Indexed(prefix, i, suffix)
		if !ok {
			return nil, protocolError("missing list item", prefix+strconv.Itoa(i)+suffix)
		}
		out = append(out, item)
	}
	return out, nil
}

// safe reports whether b is sent literally by the Perl encoder: A-Z a-z 0-9 _ , - . / \ :
func safe(b byte) bool {
	switch {
	case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		return true
	}
	switch b {
	case '_', ',', '-', '.', '/', '\\', ':':
		return true
	}
	return false
}

const upperHex = "0123456789ABCDEF"

// AppendEscape appends s encoded the way the Perl client and tracker encode names and values (their
// eurl routine): safe bytes literal, space as '+', every other byte as %XX with upper-case hex.
func AppendEscape(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case safe(c):
			dst = append(dst, c)
		case c == ' ':
			dst = append(dst, '+')
		default:
			dst = append(dst, '%', upperHex[c>>4], upperHex[c&15])
		}
	}
	return dst
}

// Escape returns s encoded as AppendEscape does.
func Escape(s string) string { return string(AppendEscape(nil, s)) }

// AppendArgs appends a encoded exactly as the Perl client encodes a request's arguments (spec 2.2):
// pairs in order, joined by '&', each name and value escaped by AppendEscape. Empty values are sent
// ("after="). An empty list appends nothing.
func AppendArgs(dst []byte, a Args) []byte {
	for i := range a {
		if i > 0 {
			dst = append(dst, '&')
		}
		dst = AppendEscape(dst, a[i].Name)
		dst = append(dst, '=')
		dst = AppendEscape(dst, a[i].Value)
	}
	return dst
}

// Unhex is the value of the hex digit c in either case, and false when c is not one. It decodes the
// %XX escapes of arguments here and of request paths in the gateway.
func Unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// Unescape decodes s the way the tracker does: '+' becomes a space first, then each %XX (either hex
// case) becomes its byte. A '%' not followed by two hex digits stays literal, so a decoded '+' from
// %2B survives and every input decodes.
func Unescape(s string) string {
	if strings.IndexByte(s, '+') < 0 && strings.IndexByte(s, '%') < 0 {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '+':
			b = append(b, ' ')
		case '%':
			if i+2 < len(s) {
				hi, ok1 := Unhex(s[i+1])
				lo, ok2 := Unhex(s[i+2])
				if ok1 && ok2 {
					b = append(b, hi<<4|lo)
					i += 2
					continue
				}
			}
			b = append(b, c)
		default:
			b = append(b, c)
		}
	}
	return string(b)
}

// ParseArgs decodes an argument string exactly as the Perl tracker's decode_url_args does (spec 2.2),
// quirks included:
//   - segments are split on '&'; empty segments and segments that are exactly "0" are dropped;
//   - a segment splits on '='; a further '=' truncates the value ("key=a=b" gives "a"), and a segment
//     without '=' has an empty value;
//   - '+' becomes a space before %XX is decoded, in names and values;
//   - a repeated name joins its values with a NUL byte, except that no NUL follows an earlier value
//     that is empty or "0". The pair keeps the position of its first occurrence.
//
// Every byte string decodes, so the error is always nil; it is part of the signature so that
// callers treat decoding like the other parsers of this package.
func ParseArgs(s []byte) (Args, error) {
	return parseArgs(string(s)), nil
}

// parseArgs is ParseArgs on a string; values that need no decoding share s's memory.
func parseArgs(s string) Args {
	return appendArgs(make(Args, 0, strings.Count(s, "&")+1), s)
}

// appendArgs appends the pairs of s, decoded as ParseArgs does, to out, which must hold no pairs of
// its own (the caller passes an empty list, with room to reuse).
func appendArgs(out Args, s string) Args {
	for len(s) > 0 {
		var seg string
		if i := strings.IndexByte(s, '&'); i >= 0 {
			seg, s = s[:i], s[i+1:]
		} else {
			seg, s = s, ""
		}
		if seg == "" || seg == "0" {
			continue
		}
		name, value := seg, ""
		if i := strings.IndexByte(seg, '='); i >= 0 {
			name, value = seg[:i], seg[i+1:]
			if j := strings.IndexByte(value, '='); j >= 0 {
				value = value[:j]
			}
		}
		name, value = Unescape(name), Unescape(value)
		if k := out.index(name); k >= 0 {
			prev := out[k].Value
			if prev == "" || prev == "0" {
				out[k].Value = prev + value
			} else {
				out[k].Value = prev + "\x00" + value
			}
			continue
		}
		out = append(out, Arg{name, value})
	}
	return out
}

// index returns the position of the first pair called name, or -1.
func (a Args) index(name string) int {
	for i := range a {
		if a[i].Name == name {
			return i
		}
	}
	return -1
}
