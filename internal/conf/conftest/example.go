package conftest

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// span is the lines first to last of the example, counted from 1.
type span struct{ first, last int }

func (s span) has(line int) bool { return s.first <= line && line <= s.last }

// parse reads the example, comments kept.
func parse(text []string) (*yaml.Node, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(strings.Join(text, "\n")), &doc); err != nil {
		return nil, err
	}
	if len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("the document is not a mapping of sections")
	}
	return &doc, nil
}

// find follows a dotted path of mapping keys ("gateway.cache") from the document's root; nil when
// a key is missing.
func find(doc *yaml.Node, path string) (key, value *yaml.Node) {
	value = doc.Content[0]
	for _, seg := range strings.Split(path, ".") {
		key = nil
		for i := 0; value.Kind == yaml.MappingNode && i+1 < len(value.Content); i += 2 {
			if value.Content[i].Value == seg {
				key = value.Content[i]
				value = value.Content[i+1]
				break
			}
		}
		if key == nil {
			return nil, nil
		}
	}
	return key, value
}

// blockEnd is the last line of key's block: the lines after it that are indented deeper than the
// key, comments included, up to the last one that is not blank.
func blockEnd(text []string, key *yaml.Node) int {
	end := key.Line
	for i := key.Line; i < len(text); i++ { // text[i] is line i+1
		s := strings.TrimLeft(text[i], " ")
		if strings.TrimSpace(s) == "" {
			continue
		}
		if len(text[i])-len(s)+1 <= key.Column {
			break
		}
		end = i + 1
	}
	return end
}

// owned is the span of the example that section s answers for, and within it the blocks it leaves
// to other packages. A nested section ("gateway.cache") owns the lines of its block; the line of
// its key belongs to the enclosing section. A top-level section also owns the comments above it
// (the first one the head of the file) and the last one everything after it, so that every line
// of the file has a section whose test fails on a claim there that it cannot check.
func owned(doc *yaml.Node, text []string, s Section) (own span, delegated []span, err error) {
	key, _ := find(doc, s.Path)
	if key == nil {
		return span{}, nil, fmt.Errorf("no section %s", s.Path)
	}
	own = span{key.Line + 1, blockEnd(text, key)}
	if !strings.Contains(s.Path, ".") {
		root := doc.Content[0].Content
		i := slices.Index(root, key)
		own.first = 1
		if i >= 2 {
			own.first = blockEnd(text, root[i-2]) + 1
		}
		if i+2 >= len(root) {
			own.last = len(text)
		}
	}
	for _, d := range s.Delegated {
		if k, _ := find(doc, s.Path+"."+d); k != nil {
			delegated = append(delegated, span{k.Line + 1, blockEnd(text, k)})
		}
	}
	return own, delegated, nil
}

func isComment(line string) bool { return strings.HasPrefix(strings.TrimSpace(line), "#") }

// uncommentEntries makes the commented-out entries of the section that state defaults part of it:
// a run of comment lines among mine that holds a claim is uncommented when decodes accepts the
// result, so prose stays a comment and "# replicate: ... #   interval: 1s  # default 1s" is checked
// too. Line numbers do not change. It returns the text and the lines uncommented.
func uncommentEntries(text []string, mine func(line int) bool, decodes func(text []string, run span) bool) ([]string, []int) {
	var done []int
	for i := 0; i < len(text); { // text[i] is line i+1
		if !mine(i+1) || !isComment(text[i]) {
			i++
			continue
		}
		j := i
		for j < len(text) && mine(j+1) && isComment(text[j]) {
			j++
		}
		if slices.ContainsFunc(text[i:j], claimLine.MatchString) {
			try := slices.Clone(text)
			for k := i; k < j; k++ {
				at := strings.IndexByte(try[k], '#')
				try[k] = try[k][:at] + strings.TrimPrefix(try[k][at+1:], " ")
			}
			if decodes(try, span{i + 1, j}) {
				text = try
				for k := i; k < j; k++ {
					done = append(done, k+1)
				}
			}
		}
		i = j
	}
	return text, done
}

// yamlField follows a YAML path ("routes[0].cache.disk") through v by yaml tags. A nil pointer on
// the way is returned as it is and a missing map entry as its zero value, since both mean "not
// set"; ok is false when the path names no field at all.
func yamlField(v reflect.Value, path string) (_ reflect.Value, ok bool) {
	for _, seg := range strings.Split(strings.NewReplacer("[", ".", "]", "").Replace(path), ".") {
		for v.Kind() == reflect.Pointer {
			if v.IsNil() {
				return v, true
			}
			v = v.Elem()
		}
		switch v.Kind() {
		case reflect.Struct:
			f, found := reflect.Value{}, false
			for i := range v.NumField() {
				if name, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("yaml"), ","); name == seg {
					f, found = v.Field(i), true
					break
				}
			}
			if !found {
				return reflect.Value{}, false
			}
			v = f
		case reflect.Slice:
			i, err := strconv.Atoi(seg)
			if err != nil || i >= v.Len() {
				return reflect.Value{}, false
			}
			v = v.Index(i)
		case reflect.Map:
			e := v.MapIndex(reflect.ValueOf(seg))
			if !e.IsValid() {
				return reflect.Zero(v.Type().Elem()), true
			}
			v = e
		default:
			return reflect.Value{}, false
		}
	}
	return v, true
}

// showValue prints a field, and what a pointer points to.
func showValue(v reflect.Value) string {
	for v.Kind() == reflect.Pointer && !v.IsNil() {
		v = v.Elem()
	}
	if v.Kind() == reflect.Pointer {
		return "nil"
	}
	if v.Kind() == reflect.String {
		return strconv.Quote(v.String())
	}
	return fmt.Sprintf("%v", v.Interface())
}
