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
	}
	return "unknown"
}

// Selector is a parsed purge path.
type Selector struct {
	Kind Kind
	// Arg is the URI path for KindURI, the prefix (without "*") for KindPrefix, empty for KindAll.
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

// String returns the purge path that parses to s.
func (s Selector) String() string {
	switch s.Kind {
	case KindAll:
		return "/*"
	case KindPrefix:
		return s.Arg + "*"
	}
	return s.Arg
}

// apply runs the selector against t.
func (s Selector) apply(t Target, soft bool) (int, int64) {
	switch s.Kind {
	case KindAll:
		return t.PurgeAll(soft)
	case KindPrefix:
		return t.PurgePrefix(s.Arg, soft)
	}
	return t.Purge(s.Arg, soft)
}
