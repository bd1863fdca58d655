package conf

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// FieldError is a problem with one configuration field. Validate methods return these (joined with
// errors.Join when there are several); Load turns them into Errors that carry the file and line.
type FieldError struct {
	// Field is the YAML path relative to the struct being validated: "listen", "routes[2].prefix".
	Field string
	// Problem says what is wrong with the value.
	Problem string
	// Fix says what to write instead; empty when Problem already says it.
	Fix string
}

func (e *FieldError) Error() string {
	s := e.Field + ": " + e.Problem
	if e.Fix != "" {
		s += "; " + e.Fix
	}
	return s
}

// Field returns a *FieldError for field.
func Field(field, fix, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Problem: fmt.Sprintf(format, args...), Fix: fix}
}

// Within prefixes the Field of every FieldError in err (including joined errors) with prefix, so a
// section's Validate can report "listen" and its caller "storaged.listen". Other errors pass through.
func Within(prefix string, err error) error {
	if err == nil || prefix == "" {
		return err
	}
	errs := unjoin(err)
	out := make([]error, 0, len(errs))
	for _, e := range errs {
		var fe *FieldError
		if errors.As(e, &fe) {
			c := *fe
			if strings.HasPrefix(c.Field, "[") {
				c.Field = prefix + c.Field
			} else {
				c.Field = prefix + "." + c.Field
			}
			out = append(out, &c)
			continue
		}
		out = append(out, e)
	}
	return errors.Join(out...)
}

// FieldErrors splits what a Validate method returned into its FieldErrors and any other errors,
// looking through errors joined by errors.Join at every depth. A nil err gives nothing.
func FieldErrors(err error) (fields []*FieldError, others []error) {
	if err == nil {
		return nil, nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			f, o := FieldErrors(e)
			fields = append(fields, f...)
			others = append(others, o...)
		}
		return fields, others
	}
	var fe *FieldError
	if errors.As(err, &fe) {
		return []*FieldError{fe}, nil
	}
	return nil, []error{err}
}

// unjoin returns the errors joined in err (by errors.Join), or err alone.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// Error is a configuration error located in a file.
type Error struct {
	File  string
	Line  int // 0 when unknown
	Field string
	Msg   string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":" + strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Validator is implemented by configuration structs that check themselves after decoding.
type Validator interface {
	Validate() error
}

// Load reads the YAML file at path into v (a pointer to a struct) strictly: unknown fields, wrong
// types and Validate errors all come back as *Error values (joined) naming the file, line and field.
// It also returns the parsed document, in which errors found later can be Located.
func Load(path string, v any) (*yaml.Node, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{File: path, Msg: fmt.Sprintf("cannot read config file: %v", err)}
	}
	return decode(path, data, v)
}

// Decode is Load on bytes already read; name is used in messages.
func Decode(name string, data []byte, v any) error {
	_, err := decode(name, data, v)
	return err
}

func decode(name string, data []byte, v any) (*yaml.Node, error) {
	doc := &yaml.Node{}
	if err := yaml.Unmarshal(data, doc); err != nil {
		return nil, &Error{File: name, Line: yamlErrLine(err.Error()), Msg: cleanYAMLErr(err.Error())}
	}
	if len(doc.Content) > 0 {
		if errs := checkKnown(name, doc.Content[0], reflect.TypeOf(v), ""); len(errs) > 0 {
			return nil, errors.Join(errs...)
		}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil && err.Error() != "EOF" {
		located := func(m string) error {
			line := yamlErrLine(m)
			field := ""
			if len(doc.Content) > 0 {
				field = pathAtLine(doc.Content[0], line, "")
			}
			return &Error{File: name, Line: line, Field: field, Msg: cleanYAMLErr(m)}
		}
		var te *yaml.TypeError
		if errors.As(err, &te) {
			errs := make([]error, 0, len(te.Errors))
			for _, m := range te.Errors {
				errs = append(errs, located(m))
			}
			return nil, errors.Join(errs...)
		}
		return nil, located(err.Error())
	}
	if val, ok := v.(Validator); ok {
		if err := val.Validate(); err != nil {
			return nil, Locate(name, doc, err)
		}
	}
	return doc, nil
}

// Locate turns the FieldErrors in err into *Errors carrying name and the line of the field in doc
// (or of its nearest parent present in the file when the field was left out).
func Locate(name string, doc *yaml.Node, err error) error {
	errs := unjoin(err)
	out := make([]error, 0, len(errs))
	for _, e := range errs {
		var fe *FieldError
		if !errors.As(e, &fe) {
			out = append(out, &Error{File: name, Msg: e.Error()})
			continue
		}
		msg := fe.Problem
		if fe.Fix != "" {
			msg += "; " + fe.Fix
		}
		line := 0
		if doc != nil && len(doc.Content) > 0 {
			line = lineOf(doc.Content[0], fe.Field)
		}
		out = append(out, &Error{File: name, Line: line, Field: fe.Field, Msg: msg})
	}
	return errors.Join(out...)
}

// lineOf finds the line of a dotted path such as "gateway.routes[1].prefix".
func lineOf(n *yaml.Node, path string) int {
	line := n.Line
	for _, seg := range splitPath(path) {
		var next *yaml.Node
		if idx, err := strconv.Atoi(seg); err == nil && n.Kind == yaml.SequenceNode {
			if idx >= 0 && idx < len(n.Content) {
				next = n.Content[idx]
			}
		} else if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == seg {
					line = n.Content[i].Line
					next = n.Content[i+1]
					break
				}
			}
		}
		if next == nil {
			return line
		}
		n = next
		if n.Kind != yaml.MappingNode || n.Line > line {
			line = n.Line
		}
	}
	return line
}

// pathAtLine is the reverse of lineOf: the dotted path of the deepest key written on line, or "".
func pathAtLine(n *yaml.Node, line int, path string) string {
	if line <= 0 {
		return ""
	}
	best := ""
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			p := k.Value
			if path != "" {
				p = path + "." + k.Value
			}
			if k.Line == line {
				best = p
			}
			if deeper := pathAtLine(n.Content[i+1], line, p); deeper != "" {
				best = deeper
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			// An item of a flow sequence ("key: [a, b]") shares its key's line: name the key.
			if c.Kind == yaml.ScalarNode && c.Line == line && n.Style&yaml.FlowStyle == 0 {
				best = p
			}
			if deeper := pathAtLine(c, line, p); deeper != "" {
				best = deeper
			}
		}
	}
	return best
}

func splitPath(p string) []string {
	p = strings.ReplaceAll(p, "[", ".")
	p = strings.ReplaceAll(p, "]", "")
	var out []string
	for _, s := range strings.Split(p, ".") {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

var unmarshalerType = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()

// checkKnown walks the document against the Go type and reports unknown keys with the list of
// known ones, which reads better than yaml.v3's "field x not found in type y".
func checkKnown(name string, n *yaml.Node, t reflect.Type, path string) []error {
	for t.Kind() == reflect.Pointer {
		if t.Implements(unmarshalerType) {
			return nil
		}
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		return nil
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return nil // a type error; the decoder reports it with its line
		}
		fields := map[string]reflect.Type{}
		collectFields(t, fields)
		var errs []error
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			ft, ok := fields[k]
			p := k
			if path != "" {
				p = path + "." + k
			}
			if !ok {
				errs = append(errs, &Error{File: name, Line: n.Content[i].Line, Field: p,
					Msg: "unknown field" + suggest(k, fields)})
				continue
			}
			errs = append(errs, checkKnown(name, n.Content[i+1], ft, p)...)
		}
		return errs
	case reflect.Slice, reflect.Array:
		if n.Kind != yaml.SequenceNode {
			return nil
		}
		var errs []error
		for i, c := range n.Content {
			errs = append(errs, checkKnown(name, c, t.Elem(), fmt.Sprintf("%s[%d]", path, i))...)
		}
		return errs
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return nil
		}
		var errs []error
		for i := 0; i+1 < len(n.Content); i += 2 {
			errs = append(errs, checkKnown(name, n.Content[i+1], t.Elem(), path+"."+n.Content[i].Value)...)
		}
		return errs
	}
	return nil
}

func collectFields(t reflect.Type, out map[string]reflect.Type) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if strings.Contains(opts, "inline") {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				collectFields(ft, out)
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
}

func suggest(k string, fields map[string]reflect.Type) string {
	names := make([]string, 0, len(fields))
	best, bestD := "", 3
	for n := range fields {
		names = append(names, n)
		if d := editDistance(k, n); d < bestD {
			best, bestD = n, d
		}
	}
	sort.Strings(names)
	s := ""
	if best != "" {
		s = fmt.Sprintf("; did you mean %q?", best)
	}
	return s + " Known fields here: " + strings.Join(names, ", ")
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := prev[j-1]
			if a[i-1] != b[j-1] {
				c++
			}
			cur[j] = min(c, prev[j]+1, cur[j-1]+1)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func yamlErrLine(m string) int {
	i := strings.Index(m, "line ")
	if i < 0 {
		return 0
	}
	j := i + 5
	for j < len(m) && m[j] >= '0' && m[j] <= '9' {
		j++
	}
	n, _ := strconv.Atoi(m[i+5 : j])
	return n
}

// cleanYAMLErr removes yaml.v3's "yaml: line N:" decoration, since Error prints the line itself.
func cleanYAMLErr(m string) string {
	m = strings.TrimPrefix(m, "yaml: ")
	if strings.HasPrefix(m, "unmarshal errors:\n") {
		m = strings.TrimSpace(strings.TrimPrefix(m, "unmarshal errors:\n"))
	}
	if strings.HasPrefix(m, "line ") {
		if i := strings.Index(m, ": "); i > 0 {
			m = m[i+2:]
		}
	}
	// A nested "line N: " left by our own UnmarshalYAML errors.
	if strings.HasPrefix(m, "line ") {
		if i := strings.Index(m, ": "); i > 0 {
			m = m[i+2:]
		}
	}
	return m
}
