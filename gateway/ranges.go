package gateway

import (
	"strconv"
	"strings"
)

// byteRange is one "bytes=" range as the client wrote it (RFC 9110 section 14.1.2): first-last,
// first- (last -1), or a suffix of n bytes (suffix true, last holds n).
type byteRange struct {
	first, last int64
	suffix      bool
}

// parseRange reads a Range header holding exactly one byte range. ok is false for anything else
// (several ranges, another unit, malformed): such a header is ignored and the whole body is sent,
// which RFC 9110 allows.
func parseRange(h string) (byteRange, bool) {
	spec, found := strings.CutPrefix(strings.TrimSpace(h), "bytes=")
	if !found || strings.Contains(spec, ",") {
		return byteRange{}, false
	}
	a, b, found := strings.Cut(strings.TrimSpace(spec), "-")
	if !found {
		return byteRange{}, false
	}
	num := func(s string) (int64, bool) {
		if s == "" || len(s) > 18 {
			return 0, false
		}
		for _, c := range s {
			if c < '0' || c > '9' {
				return 0, false
			}
		}
		n, err := strconv.ParseInt(s, 10, 64)
		return n, err == nil
	}
	if a == "" {
		n, ok := num(b)
		if !ok {
			return byteRange{}, false
		}
		return byteRange{last: n, suffix: true}, true
	}
	first, ok := num(a)
	if !ok {
		return byteRange{}, false
	}
	if b == "" {
		return byteRange{first: first, last: -1}, true
	}
	last, ok := num(b)
	if !ok || last < first {
		return byteRange{}, false
	}
	return byteRange{first: first, last: last}, true
}

// String writes r as a Range header value.
func (r byteRange) String() string {
	switch {
	case r.suffix:
		return "bytes=-" + strconv.FormatInt(r.last, 10)
	case r.last < 0:
		return "bytes=" + strconv.FormatInt(r.first, 10) + "-"
	}
	return "bytes=" + strconv.FormatInt(r.first, 10) + "-" + strconv.FormatInt(r.last, 10)
}

// resolve applies r to a body of size bytes and returns the offset and length to send; ok is false
// when the range is not satisfiable (416).
func (r byteRange) resolve(size int64) (off, n int64, ok bool) {
	if r.suffix {
		if r.last == 0 || size == 0 {
			return 0, 0, false
		}
		n = min(r.last, size)
		return size - n, n, true
	}
	if r.first >= size {
		return 0, 0, false
	}
	last := size - 1
	if r.last >= 0 && r.last < last {
		last = r.last
	}
	return r.first, last - r.first + 1, true
}
