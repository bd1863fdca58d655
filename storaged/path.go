package storaged

import (
	"errors"
	"net/url"
	"strings"
)

// Path errors. Each maps to one HTTP status (see pathStatus).
var (
	errBadPath   = errors.New("storaged: invalid path")               // 400
	errForbidden = errors.New("storaged: path leaves the docroot")    // 403
	errNoDevice  = errors.New("storaged: path is not under a dev<N>") // 404
)

// isDevName reports whether s is "dev" followed by one or more digits, as mogstored's ^dev\d+$.
func isDevName(s string) bool {
	if len(s) < 4 || !strings.HasPrefix(s, "dev") {
		return false
	}
	for i := 3; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// stripAbsolute removes "http://host:port" from an absolute-form request URI.
func stripAbsolute(raw string) string {
	for _, p := range []string{"http://", "https://"} {
		if len(raw) >= len(p) && strings.EqualFold(raw[:len(p)], p) {
			rest := raw[len(p):]
			if i := strings.IndexByte(rest, '/'); i >= 0 {
				return rest[i:]
			}
			return "/"
		}
	}
	return raw
}

// readPath turns a raw GET/HEAD/DELETE request URI into a path relative to the docroot, such as
// "dev1/0/000/000/0000000001.fid", or "" for the docroot itself. The query string is dropped and
// the path percent-decoded. Empty and "." segments are dropped, so "//dev1/usage" works as it does
// with mogstored. A ".." segment gives errForbidden; NUL, backslashes and bad escapes errBadPath.
func readPath(raw string) (string, error) {
	raw = stripAbsolute(raw)
	if i := strings.IndexAny(raw, "?#"); i >= 0 {
		raw = raw[:i]
	}
	if !strings.HasPrefix(raw, "/") {
		return "", errForbidden
	}
	// Strict: "%" must be followed by two hex digits; "+" stays "+". No allocation without "%".
	p, err := url.PathUnescape(raw)
	if err != nil {
		return "", errBadPath
	}
	if strings.ContainsAny(p, "\x00\\") {
		return "", errBadPath
	}
	rel, ok := relPath(p)
	if !ok {
		return "", errForbidden
	}
	return rel, nil
}

// relPath turns p ("/...") into a path relative to the docroot: empty and "." segments dropped, ""
// for the root itself. ok is false when a segment is "..".
func relPath(p string) (rel string, ok bool) {
	if cleanAbs(p) {
		return p[1:], true // the usual case, without allocating
	}
	segs := make([]string, 0, 8)
	for _, s := range strings.Split(p, "/") {
		switch s {
		case "", ".":
			continue
		case "..":
			return "", false
		}
		segs = append(segs, s)
	}
	return strings.Join(segs, "/"), true
}

// cleanAbs reports whether p ("/..." ) has no empty, "." or ".." segment after the leading slash,
// so that p[1:] is already the relative path readPath would build. "/" is not clean (it is the root).
func cleanAbs(p string) bool {
	start := 1
	for i := 1; i <= len(p); i++ {
		if i < len(p) && p[i] != '/' {
			continue
		}
		switch p[start:i] {
		case "", ".", "..":
			return false
		}
		start = i + 1
	}
	return true
}

// writePath checks a raw PUT or DELETE request URI the way Perlbal does, on the undecoded bytes:
// one or more "/" segments of [A-Za-z0-9_.-], no "..", no "." segment, no query string. It returns
// the path relative to the docroot, whose first segment is a dev<N> and which names a file below it.
func writePath(raw string) (string, error) {
	raw = stripAbsolute(raw)
	if len(raw) < 2 || raw[0] != '/' || strings.Contains(raw, "..") {
		return "", errBadPath
	}
	rel := raw[1:]
	start := 0
	nseg := 0
	for i := 0; i <= len(rel); i++ {
		if i < len(rel) && rel[i] != '/' {
			if !fileNameByte(rel[i]) {
				return "", errBadPath
			}
			continue
		}
		seg := rel[start:i]
		if seg == "" || seg == "." {
			return "", errBadPath
		}
		if nseg == 0 && !isDevName(seg) {
			return "", errNoDevice
		}
		nseg++
		start = i + 1
	}
	if nseg < 2 {
		return "", errBadPath
	}
	return rel, nil
}

func fileNameByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-'
}
