// Package httpsem holds the HTTP semantics the gateway and storaged share, after RFC 9110: byte ranges
// and Content-Range (ranges.go), conditional requests with entity tags (conditional.go) and HTTP dates
// (date.go), and Content-Type by file extension (mime.go). It imports no mogway package.
//
// Parsers take a header value as a string or as a []byte (fasthttp's Peek) and allocate nothing, and
// formatters append to a caller's buffer, so request paths that use them stay allocation-free
// (alloc_test.go proves it). Everything here is safe for concurrent use: there is no shared state.
package httpsem

import (
	"math"
	"strconv"
)

// Text is a header value: a string, or the []byte fasthttp hands out.
type Text interface{ ~string | ~[]byte }

// MaxRanges is the most byte-range-specs ParseRange accepts in one Range header. A longer list is
// ignored whole: RFC 9110 section 14.2 lets a server ignore a Range with many ranges, a sign of a
// broken client or a denial-of-service attempt.
const MaxRanges = 16

// Spec is one byte-range-spec as written (RFC 9110 section 14.1.1): "first-last", "first-" (Last is
// -1), or the suffix "-n" (First is -1 and Last holds n). A position too large for an int64 is read as
// math.MaxInt64: the spec is still valid, and Resolve decides whether it is satisfiable. A spec whose
// last-pos is below its first-pos is invalid (RFC 9110 section 14.1.1) and never satisfiable.
type Spec struct{ First, Last int64 }

// Suffix reports whether s is a suffix range ("-n", the last n bytes).
func (s Spec) Suffix() bool { return s.First < 0 }

// Resolve applies s to a representation of size bytes and returns the offset and length to send; ok is
// false when s is not satisfiable there (RFC 9110 section 14.1.2): a first-pos at or past the end, a
// suffix of zero bytes, any range of an empty representation, or an invalid spec.
func (s Spec) Resolve(size int64) (off, n int64, ok bool) {
	if s.First < 0 {
		if s.Last <= 0 || size <= 0 {
			return 0, 0, false
		}
		n = min(s.Last, size)
		return size - n, n, true
	}
	if s.First >= size || (s.Last >= 0 && s.Last < s.First) {
		return 0, 0, false
	}
	last := size - 1
	if s.Last >= 0 && s.Last < last {
		last = s.Last
	}
	return s.First, last - s.First + 1, true
}

// Ranges is a parsed Range header. It holds its specs in place, so a Ranges lives on the stack and
// parsing allocates nothing. The zero value holds no spec.
type Ranges struct {
	n     int
	specs [MaxRanges]Spec
}

// Len is the number of specs.
func (r *Ranges) Len() int { return r.n }

// At returns spec i, 0 <= i < Len(), in the order the client wrote them.
func (r *Ranges) At(i int) Spec { return r.specs[:r.n][i] }

// ParseRange parses a Range header value, "bytes=" and a list of byte-range-specs (RFC 9110 section
// 14.1.2). ok is false when the header is to be ignored and the whole representation sent (section
// 14.2): another range unit, a syntax error, or more than MaxRanges specs. The unit is compared
// case-insensitively; OWS around list elements and around the "-", and empty list elements, are
// accepted.
//
// A spec whose last-pos is below its first-pos ("bytes=5-1") is kept, and is never satisfiable: alone
// it gives 416. Section 14.2 lets a server ignore or reject an invalid ranges-set; rejecting it is what
// nginx does and what mogstored does (the MogileFS storage protocol answers 416 to A > B).
func ParseRange[T Text](v T) (r Ranges, ok bool) {
	v = trimOWS(v)
	const unit = "bytes"
	if len(v) <= len(unit) || !equalFoldASCII(v[:len(unit)], unit) {
		return Ranges{}, false
	}
	rest := v[len(unit):]
	if rest[0] != '=' {
		return Ranges{}, false
	}
	rest = rest[1:]
	for len(rest) > 0 {
		var elem T
		elem, rest = cutByte(rest, ',')
		if elem = trimOWS(elem); len(elem) == 0 {
			continue
		}
		s, ok := parseSpec(elem)
		if !ok || r.n == MaxRanges {
			return Ranges{}, false
		}
		r.specs[r.n] = s
		r.n++
	}
	return r, r.n > 0
}

// parseSpec reads one non-empty byte-range-spec.
func parseSpec[T Text](v T) (Spec, bool) {
	a, b := cutByte(v, '-')
	if len(a) == len(v) { // no "-"
		return Spec{}, false
	}
	a, b = trimOWS(a), trimOWS(b)
	if len(a) == 0 {
		n, ok := saturatingDigits(b)
		return Spec{First: -1, Last: n}, ok
	}
	first, ok := saturatingDigits(a)
	if !ok {
		return Spec{}, false
	}
	if len(b) == 0 {
		return Spec{First: first, Last: -1}, true
	}
	last, ok := saturatingDigits(b)
	return Spec{First: first, Last: last}, ok
}

// RangeStatus is what a Range header means for one representation.
type RangeStatus int

const (
	// RangeIgnore: send the whole representation with 200.
	RangeIgnore RangeStatus = iota
	// RangeOK: send the resolved range with 206 and a Content-Range.
	RangeOK
	// RangeUnsatisfiable: answer 416 with "Content-Range: bytes */size".
	RangeUnsatisfiable
)

// Resolve reduces r to the one range to send from a representation of size bytes. Specs that are
// not satisfiable are dropped and the others coalesced where they overlap or touch, as RFC 9110
// section 14.2 allows. One range left: RangeOK with its offset and length. None: RangeUnsatisfiable.
// Several disjoint ranges: RangeIgnore, since a multipart/byteranges answer is never generated and
// section 14.2 lets a server ignore Range. An empty r is RangeIgnore.
func (r *Ranges) Resolve(size int64) (off, n int64, st RangeStatus) {
	if r.n == 0 {
		return 0, 0, RangeIgnore
	}
	// Satisfiable ranges as [start, end) intervals, sorted by start (insertion sort: at most MaxRanges).
	var iv [MaxRanges][2]int64
	k := 0
	for _, s := range r.specs[:r.n] {
		o, l, ok := s.Resolve(size)
		if !ok {
			continue
		}
		j := k
		for ; j > 0 && iv[j-1][0] > o; j-- {
			iv[j] = iv[j-1]
		}
		iv[j] = [2]int64{o, o + l}
		k++
	}
	if k == 0 {
		return 0, 0, RangeUnsatisfiable
	}
	start, end := iv[0][0], iv[0][1]
	for _, x := range iv[1:k] {
		if x[0] > end {
			return 0, 0, RangeIgnore
		}
		end = max(end, x[1])
	}
	return start, end - start, RangeOK
}

// AppendContentRange appends the Content-Range value "bytes first-last/total" of the n > 0 bytes at
// off within a representation of total bytes (RFC 9110 section 14.4); a negative total is written "*".
func AppendContentRange(dst []byte, off, n, total int64) []byte {
	dst = append(dst, "bytes "...)
	dst = appendInt(dst, off)
	dst = append(dst, '-')
	dst = appendInt(dst, off+n-1)
	dst = append(dst, '/')
	if total < 0 {
		return append(dst, '*')
	}
	return appendInt(dst, total)
}

// AppendUnsatisfiedRange appends "bytes */total", the Content-Range of a 416 answer.
func AppendUnsatisfiedRange(dst []byte, total int64) []byte {
	return appendInt(append(dst, "bytes */"...), total)
}

// ParseContentRange parses a Content-Range value "bytes first-last/total" or "bytes first-last/*"
// (total -1), as a 206 answer or a partial PUT carries it (RFC 9110 section 14.4). ok is false for any
// other form, "bytes */total" included (see ParseUnsatisfiedRange), and for an invalid range: last-pos
// below first-pos, or a total not above last-pos. The unit is compared case-insensitively and OWS
// around the range and the total is accepted; a number too large for an int64 is an error.
func ParseContentRange[T Text](v T) (first, last, total int64, ok bool) {
	rest, ok := cutUnitSP(v)
	if !ok {
		return 0, 0, 0, false
	}
	rng, tot := cutByte(rest, '/')
	if len(rng) == len(rest) {
		return 0, 0, 0, false
	}
	a, b := cutByte(trimOWS(rng), '-')
	first, ok1 := exactDigits(a)
	last, ok2 := exactDigits(b)
	if !ok1 || !ok2 || last < first {
		return 0, 0, 0, false
	}
	total = -1
	if tot = trimOWS(tot); !(len(tot) == 1 && tot[0] == '*') {
		if total, ok = exactDigits(tot); !ok || total <= last {
			return 0, 0, 0, false
		}
	}
	return first, last, total, true
}

// ParseUnsatisfiedRange parses "bytes */total", the Content-Range of a 416 answer.
func ParseUnsatisfiedRange[T Text](v T) (total int64, ok bool) {
	rest, ok := cutUnitSP(v)
	if !ok || len(rest) < 2 || rest[0] != '*' || rest[1] != '/' {
		return 0, false
	}
	return exactDigits(trimOWS(rest[2:]))
}

// cutUnitSP strips OWS and the leading "bytes" and space of a Content-Range value.
func cutUnitSP[T Text](v T) (T, bool) {
	v = trimOWS(v)
	const unit = "bytes "
	if len(v) <= len(unit) || !equalFoldASCII(v[:len(unit)], unit) {
		return v, false
	}
	return trimOWS(v[len(unit):]), true
}

// saturatingDigits reads a non-empty run of ASCII digits; a value past math.MaxInt64 gives
// math.MaxInt64 (a Range position that large is valid, just not satisfiable).
func saturatingDigits[T Text](s T) (int64, bool) {
	if len(s) == 0 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		d := int64(c - '0')
		if n > (math.MaxInt64-d)/10 {
			n = math.MaxInt64
			continue
		}
		n = n*10 + d
	}
	return n, true
}

// exactDigits reads a non-empty run of ASCII digits that fits an int64.
func exactDigits[T Text](s T) (int64, bool) {
	n, ok := saturatingDigits(s)
	if !ok || n == math.MaxInt64 {
		return 0, false
	}
	return n, true
}

func appendInt(dst []byte, n int64) []byte { return strconv.AppendInt(dst, n, 10) }

// cutByte splits v around the first c; after is empty and before is v when c is absent.
func cutByte[T Text](v T, c byte) (before, after T) {
	for i := 0; i < len(v); i++ {
		if v[i] == c {
			return v[:i], v[i+1:]
		}
	}
	return v, v[len(v):]
}

// trimOWS strips spaces and tabs (RFC 9110 OWS) from both ends.
func trimOWS[T Text](v T) T {
	for len(v) > 0 && (v[0] == ' ' || v[0] == '\t') {
		v = v[1:]
	}
	for len(v) > 0 && (v[len(v)-1] == ' ' || v[len(v)-1] == '\t') {
		v = v[:len(v)-1]
	}
	return v
}

// equalFoldASCII compares v with the lower-case ASCII word w, ignoring case.
func equalFoldASCII[T Text](v T, w string) bool {
	if len(v) != len(w) {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != w[i] {
			return false
		}
	}
	return true
}
