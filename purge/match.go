package purge

import (
	"errors"
	"strings"
	"unicode/utf8"
)

// Kind says what a purge path selects.
type Kind int

// Kinds of purge path.
const (
	KindURI    Kind = iota // one URI path: Target.Purge
	KindPrefix             // a path ending in "*": Target.PurgePrefix
	KindAll                // "/*": Target.PurgeAll
	KindTag                // ?tag=T: TagPurger.PurgeTag
)

// String names the kind as it appears in logs.
func (k Kind) String() string {
	switch k {
	case KindURI:
		return "uri"
	case KindPrefix:
		return "prefix"
	case KindAll:
		return "all"
	case KindTag:
		return "tag"
	}
	return "unknown"
}

// Selector is a parsed purge path.
type Selector struct {
	Kind Kind
	// Arg is the URI path for KindURI, the prefix (without "*") for KindPrefix, empty for KindAll,
	// the tag for KindTag.
	Arg string
}

// maxPathLen bounds a purge path; longer paths are refused.
const maxPathLen = 8 << 10

// Errors of ParsePath.
var (
	ErrEmptyPath = errors.New("purge: empty path; write /<uri>, /<prefix>* or /*")
	ErrBadPath   = errors.New("purge: path must begin with / and be valid UTF-8 without control characters")
	ErrLongPath  = errors.New("purge: path too long")
)

// ParsePath parses the part of a purge URL after the route prefix, with any query string removed:
// "/*" selects everything, a path ending in "*" selects that prefix, anything else one URI path. A
// "*" elsewhere in the path is an ordinary character, as with ngx_cache_purge.
func ParsePath(p string) (Selector, error) {
	switch {
	case p == "":
		return Selector{}, ErrEmptyPath
	case len(p) > maxPathLen:
		return Selector{}, ErrLongPath
	case p[0] != '/' || !utf8.ValidString(p):
		return Selector{}, ErrBadPath
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c < 0x20 || c == 0x7f {
			return Selector{}, ErrBadPath
		}
	}
	if p == "/*" {
		return Selector{Kind: KindAll}, nil
	}
	if prefix, ok := strings.CutSuffix(p, "*"); ok {
		return Selector{Kind: KindPrefix, Arg: prefix}, nil
	}
	return Selector{Kind: KindURI, Arg: p}, nil
}

// TagPrefix begins the key of a tag purge: "tag:T" is what Selector.String returns for tag T,
// what a signature of a tag purge signs in place of the path, and the "key" of its Result. A purge
// path always begins with "/", so the two never meet.
const TagPrefix = "tag:"

// maxTagLen bounds a tag.
const maxTagLen = 1 << 10

// Errors of ParseTag.
var (
	ErrEmptyTag = errors.New("purge: empty tag")
	ErrBadTag   = errors.New("purge: a tag must be valid UTF-8 of at most 1024 bytes without spaces, commas or control characters")
)

// ParseTag checks a tag (surrogate key) for a tag purge: the words of a Surrogate-Key or Cache-Tag
// header, so no spaces or commas, no control characters, valid UTF-8, at most 1024 bytes.
func ParseTag(tag string) (Selector, error) {
	if tag == "" {
		return Selector{}, ErrEmptyTag
	}
	if len(tag) > maxTagLen || !utf8.ValidString(tag) {
		return Selector{}, ErrBadTag
	}
	for i := 0; i < len(tag); i++ {
		if c := tag[i]; c <= 0x20 || c == 0x7f || c == ',' {
			return Selector{}, ErrBadTag
		}
	}
	return Selector{Kind: KindTag, Arg: tag}, nil
}

// ParseKey parses what Selector.String returns: a purge path (ParsePath) or "tag:T" (ParseTag).
func ParseKey(key string) (Selector, error) {
	if tag, ok := strings.CutPrefix(key, TagPrefix); ok {
		return ParseTag(tag)
	}
	return ParsePath(key)
}

// String returns the key that ParseKey parses to s: the purge path, or "tag:T".
func (s Selector) String() string {
	switch s.Kind {
	case KindAll:
		return "/*"
	case KindPrefix:
		return s.Arg + "*"
	case KindTag:
		return TagPrefix + s.Arg
	}
	return s.Arg
}

// apply runs the selector against t. A tag purge on a Target that is not a TagPurger purges nothing.
func (s Selector) apply(t Target, soft bool) (int, int64) {
	switch s.Kind {
	case KindAll:
		return t.PurgeAll(soft)
	case KindPrefix:
		return t.PurgePrefix(s.Arg, soft)
	case KindTag:
		if tp, ok := t.(TagPurger); ok {
			return tp.PurgeTag(s.Arg, soft)
		}
		return 0, 0
	}
	return t.Purge(s.Arg, soft)
}
