package conftest

import (
	"cmp"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// A claim is a comment that begins "default ..." or "the default(s)"; claimLine finds the lines
// that hold one, so that a claim the test cannot see fails it instead of going unchecked.
var (
	claimStart = regexp.MustCompile(`^(the\s+defaults?\b|default\b)`)
	claimLine  = regexp.MustCompile(`(^|\s)#\s*(the\s+defaults?\b|default\b)`)
	// proseDefault finds the other mentions of a default in a comment.
	proseDefault = regexp.MustCompile(`\bdefault\b`)
	yamlIndex    = regexp.MustCompile(`\[\d+\]`)
)

type claimKind int

const (
	claimValue     claimKind = iota // "default X": X is a value of the key
	claimAsWritten                  // "default", "default; ...", "the default": the value written
	claimNone                       // "default none": the key's zero value
	claimExplained                  // "default: ...": an explanation, not a value
)

// defaultClaim is one default stated in the example, at an entry of a mapping in the document.
type defaultClaim struct {
	path    string     // "gateway.routes[0].domain"
	pattern string     // path without indices: "gateway.routes[].domain"
	line    int        // of the key in the example
	comment string     // the comment, without "#"
	kind    claimKind  //
	token   string     // X as written in the comment
	parent  *yaml.Node // the mapping holding the entry
	index   int        // of the key in parent.Content
}

// parseClaim reads a comment; ok is false when it states no default.
func parseClaim(comment string) (kind claimKind, token string, ok bool) {
	s := strings.TrimSpace(strings.TrimLeft(strings.TrimSpace(comment), "#"))
	m := claimStart.FindString(s)
	if m == "" {
		return 0, "", false
	}
	if strings.HasPrefix(m, "the") {
		return claimAsWritten, "", true
	}
	rest := s[len(m):]
	switch {
	case rest == "" || rest[0] == ';' || rest[0] == ',':
		return claimAsWritten, "", true
	case rest[0] == ':':
		return claimExplained, "", true
	}
	rest = strings.TrimSpace(rest)
	token = claimToken(rest)
	if token == "none" {
		return claimNone, token, true
	}
	return claimValue, token, true
}

// claimToken is the value at the start of s: a quoted string, a flow collection, or a word without
// the punctuation that ends it in prose ("10s:", "256MiB,").
func claimToken(s string) string {
	switch s[0] {
	case '"', '\'':
		if end := strings.IndexByte(s[1:], s[0]); end >= 0 {
			return s[:end+2]
		}
	case '[', '{':
		depth := 0
		for i, c := range s {
			switch c {
			case '[', '{':
				depth++
			case ']', '}':
				if depth--; depth == 0 {
					return s[:i+1]
				}
			}
		}
	}
	word, _, _ := strings.Cut(s, " ")
	return strings.TrimRight(word, ":;,")
}

// collectClaims walks every mapping of n, entries of sequences included, and appends the claims
// found to out. The claim on a key in skip is kept, but its value is not entered: another package
// checks that block.
func collectClaims(n *yaml.Node, path string, skip []string, out *[]defaultClaim) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			collectClaims(c, path, skip, out)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			collectClaims(c, fmt.Sprintf("%s[%d]", path, i), skip, out)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := k.Value
			if path != "" {
				p = path + "." + k.Value
			}
			// yaml.v3 keeps "key: value  # c" on the value, and "key:  # c" before a block on the key.
			comment := commentLine(cmp.Or(k.LineComment, v.LineComment))
			if kind, token, ok := parseClaim(comment); ok {
				*out = append(*out, defaultClaim{path: p, pattern: yamlIndex.ReplaceAllString(p, "[]"),
					line: k.Line, comment: strings.TrimSpace(strings.TrimPrefix(comment, "#")),
					kind: kind, token: token, parent: n, index: i})
			}
			if !slices.Contains(skip, p) {
				collectClaims(v, p, skip, out)
			}
		}
	}
}

func commentLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// claimedValue is empty, or for a claim on the value as written, that value.
func claimedValue(c defaultClaim, v *yaml.Node) string {
	if c.kind != claimAsWritten {
		return ""
	}
	bare := *v
	bare.HeadComment, bare.LineComment, bare.FootComment = "", "", ""
	b, err := yaml.Marshal(&bare)
	if err != nil {
		return "the value written"
	}
	return strings.TrimSpace(string(b))
}

// hasYAMLNull reports whether n holds a null, as "{200,301,302: 10m}" does for 200 and 301.
func hasYAMLNull(n *yaml.Node) bool {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return true
	}
	return slices.ContainsFunc(n.Content, hasYAMLNull)
}
