package httpsem

// Conditions are the precondition header fields of a request (RFC 9110 section 13.1) as received; an
// empty field is an absent one. The slices are only read, during Evaluate and RangeApplies.
type Conditions struct {
	IfMatch, IfNoneMatch, IfModifiedSince, IfUnmodifiedSince, IfRange []byte
}

// Peeker is a request header that looks up a field by name; fasthttp's *RequestHeader is one.
type Peeker interface{ Peek(key string) []byte }

// ConditionsOf reads the precondition fields of h. The Conditions refer to h's memory, so they are
// good only while h is.
func ConditionsOf(h Peeker) Conditions {
	return Conditions{
		IfMatch:           h.Peek("If-Match"),
		IfNoneMatch:       h.Peek("If-None-Match"),
		IfModifiedSince:   h.Peek("If-Modified-Since"),
		IfUnmodifiedSince: h.Peek("If-Unmodified-Since"),
		IfRange:           h.Peek("If-Range"),
	}
}

// Validators are what the preconditions compare against: the selected representation's entity tag
// and Last-Modified date.
type Validators struct {
	// ETag is the entity-tag as sent in the ETag field, quotes included and "W/" first when weak;
	// "" when the representation has none.
	ETag string
	// LastModified is the Last-Modified date in Unix seconds, meaningful when HasLastModified is set.
	LastModified    int64
	HasLastModified bool
}

// Outcome is what the preconditions decide.
type Outcome int

const (
	// Proceed: the preconditions hold; answer as without them (200, or 206 where a Range applies).
	Proceed Outcome = iota
	// NotModified: answer 304 with no body.
	NotModified
	// PreconditionFailed: answer 412.
	PreconditionFailed
)

// Evaluate applies c to a representation that exists, with validators v, in the order of RFC 9110
// section 13.2.2. getOrHead says whether the request method is GET or HEAD.
//
//  1. If-Match, by strong comparison ("*" matches any representation): false gives 412.
//  2. Without If-Match, If-Unmodified-Since: a Last-Modified later than the date gives 412.
//  3. If-None-Match, by weak comparison ("*" matches any representation): true gives 304 for GET
//     and HEAD, 412 otherwise.
//  4. Without If-None-Match, for GET and HEAD, If-Modified-Since: a Last-Modified no later than the
//     date gives 304.
//
// Dates compare at second granularity. A date field that is not a valid HTTP-date, and a date field
// against a representation without Last-Modified, is ignored. If-Range is RangeApplies's business.
func (c *Conditions) Evaluate(getOrHead bool, v Validators) Outcome {
	if len(c.IfMatch) > 0 {
		if !isStar(c.IfMatch) && !ListMatches(c.IfMatch, v.ETag, false) {
			return PreconditionFailed
		}
	} else if len(c.IfUnmodifiedSince) > 0 && v.HasLastModified {
		if t, ok := ParseDate(c.IfUnmodifiedSince); ok && v.LastModified > t {
			return PreconditionFailed
		}
	}
	if len(c.IfNoneMatch) > 0 {
		if isStar(c.IfNoneMatch) || ListMatches(c.IfNoneMatch, v.ETag, true) {
			if getOrHead {
				return NotModified
			}
			return PreconditionFailed
		}
	} else if getOrHead && len(c.IfModifiedSince) > 0 && v.HasLastModified {
		if t, ok := ParseDate(c.IfModifiedSince); ok && v.LastModified <= t {
			return NotModified
		}
	}
	return Proceed
}

// RangeApplies reports whether a Range header may be honoured given If-Range (RFC 9110 section
// 13.1.5): yes without If-Range; otherwise only when it holds an entity-tag that matches v.ETag by
// strong comparison (a weak tag never does), or an HTTP-date equal to v.LastModified. An If-Range that
// is neither is false, so the whole representation is sent.
func (c *Conditions) RangeApplies(v Validators) bool {
	ir := trimOWS(c.IfRange)
	if len(ir) == 0 {
		return true
	}
	if ir[0] == '"' || (len(ir) > 1 && ir[0] == 'W' && ir[1] == '/') { // not "Wed, ..."
		tag, weak, rest, ok := nextTag(ir)
		return ok && !weak && len(trimOWS(rest)) == 0 && ListMatches(tag, v.ETag, false)
	}
	t, ok := ParseDate(ir)
	return ok && v.HasLastModified && t == v.LastModified
}

// ListMatches reports whether list, an If-Match or If-None-Match value holding entity-tags, holds one
// that matches etag: by weak comparison (opaque tags equal, "W/" ignored) when weak is set, else by
// strong comparison (both tags strong and equal), as RFC 9110 section 8.8.3.2 defines them. An empty
// etag matches nothing; "*" is not a tag here (Evaluate handles it). Scanning stops at the first
// malformed element: the tags before it still count.
func ListMatches[T Text](list T, etag string, weak bool) bool {
	want, wantWeak, rest, ok := nextTag(etag)
	if !ok || len(trimOWS(rest)) != 0 || (wantWeak && !weak) {
		return false
	}
	for {
		for len(list) > 0 && (list[0] == ' ' || list[0] == '\t' || list[0] == ',') {
			list = list[1:]
		}
		if len(list) == 0 {
			return false
		}
		tag, tagWeak, rest, ok := nextTag(list)
		if !ok {
			return false
		}
		if matchTag(tag, tagWeak, want, weak) {
			return true
		}
		list = trimOWS(rest)
		if len(list) > 0 && list[0] != ',' {
			return false
		}
	}
}

// matchTag compares an opaque-tag (quotes included) with want, the opaque-tag of the representation's
// ETag; tagWeak is whether the tag carried "W/". Strong comparison (weak false) needs a strong tag.
func matchTag[T Text](tag T, tagWeak bool, want string, weak bool) bool {
	return (weak || !tagWeak) && string(tag) == want
}

// nextTag reads the entity-tag at the start of v: [W/]"opaque". tag is the opaque-tag with its
// quotes; rest follows the closing quote.
func nextTag[T Text](v T) (tag T, weak bool, rest T, ok bool) {
	if len(v) >= 2 && v[0] == 'W' && v[1] == '/' {
		weak, v = true, v[2:]
	}
	if len(v) < 2 || v[0] != '"' {
		return v[:0], false, v, false
	}
	for i := 1; i < len(v); i++ {
		switch c := v[i]; {
		case c == '"':
			return v[:i+1], weak, v[i+1:], true
		case c < 0x21 || c == 0x7f: // not etagc
			return v[:0], false, v, false
		}
	}
	return v[:0], false, v, false
}

func isStar[T Text](v T) bool {
	v = trimOWS(v)
	return len(v) == 1 && v[0] == '*'
}
