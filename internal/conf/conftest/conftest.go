// Package conftest checks the defaults that config.example.yaml states in its comments against the
// code, so that a default changed on one side only fails a test. Each package that owns a section
// or block of the file calls CheckDefaults from its config_test.go with a function that decodes
// that section into its Config and applies its defaults; a test inside the package can call its
// unexported default functions directly. It imports no mogway package, and only _test.go files
// import it.
package conftest

import (
	"fmt"
	"maps"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// Section is the part of the example that one package checks.
type Section struct {
	// File is the example, relative to the package directory: "../config.example.yaml".
	File string
	// Path is the YAML path of the section: "gateway", or "gateway.cache" for a block of a section
	// that another package decodes.
	Path string
	// Delegated are the blocks under Path that other packages check ("cache" for gateway.cache).
	// Their lines and claims are left to those packages' tests; a claim on the key itself stays.
	Delegated []string
	// Skip gives the claims that cannot be compared with a defaulted Config, by their path without
	// indices ("gateway.routes[].cache.key"), with the reason; they are logged as skipped.
	Skip map[string]string
}

// CheckDefaults checks each default stated in section s of the example against the code. For
// "key: V  # default X" it encodes the section twice, once without the key and once with X written
// as its value, passes both to defaults and requires the same configuration: leaving the key out
// must give X. "# default" alone (or "the default") claims the value written; "default none" and a
// zero X ("0", "false") require the key left out to give the zero value, since writing a zero value
// takes the default just like leaving it out. Entries of lists (routes[0].domain) are checked in
// place, and commented-out entries that state defaults are uncommented first when the section still
// decodes with them (uncommentEntries). Claims that are explanations ("default: the machine's host
// name") or words ("default loopback only") cannot be compared and are logged as skipped.
//
// defaults decodes data, the section alone, strictly into the package's Config as the daemon does
// (conf.Decode, which also validates) and returns it with every default the package applies; name
// is for its messages. A line of the section that states a default on no key the test can find
// fails it, so that no claim goes unchecked: a top-level section answers for the comments above it
// too, and the first for the head of the file.
func CheckDefaults[C any](t *testing.T, s Section, defaults func(name string, data []byte) (C, error)) {
	t.Helper()
	raw, err := os.ReadFile(s.File)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Split(string(raw), "\n")
	doc, err := parse(text)
	if err != nil {
		t.Fatalf("%s: %v", s.File, err)
	}
	own, delegated, err := owned(doc, text, s)
	if err != nil {
		t.Fatalf("%s: %v", s.File, err)
	}
	mine := func(line int) bool {
		return own.has(line) && !slices.ContainsFunc(delegated, func(d span) bool { return d.has(line) })
	}
	name := s.Path + " section of " + s.File + " re-encoded" // the lines of its errors are not the file's

	text, uncommented := uncommentEntries(text, mine, func(try []string, run span) bool {
		d, err := parse(try)
		if err != nil {
			return false
		}
		k, v := find(d, s.Path)
		if k == nil || run.first <= k.Line || run.last > blockEnd(try, k) { // not an entry of s
			return false
		}
		data, err := yaml.Marshal(v)
		if err != nil {
			return false
		}
		_, err = defaults(name, data)
		return err == nil
	})
	if doc, err = parse(text); err != nil {
		t.Fatalf("%s with lines %v uncommented: %v", s.File, uncommented, err)
	}
	_, sec := find(doc, s.Path)
	var claims []defaultClaim
	var skipKeys []string
	for _, d := range s.Delegated {
		skipKeys = append(skipKeys, s.Path+"."+d)
	}
	collectClaims(sec, s.Path, skipKeys, &claims)

	// Every line that states a default must be a claim on an entry, or it would go unchecked.
	seen := map[int]bool{}
	for _, c := range claims {
		seen[c.line] = true
	}
	// A default mentioned inside a sentence ("fail_timeout 10s by default") is only listed.
	var prose []int
	for i, line := range text {
		switch {
		case !mine(i+1) || seen[i+1]:
		case claimLine.MatchString(line):
			t.Errorf("%s:%d: %q states a default on no entry the test can find; write it as the "+
				"comment of the key (key: value  # default X)", s.File, i+1, strings.TrimSpace(line))
		case strings.Contains(line, "#") && proseDefault.MatchString(line[strings.IndexByte(line, '#'):]):
			prose = append(prose, i+1)
		}
	}

	// variant is the section as doc now holds it, and what defaults makes of it.
	variant := func() (data []byte, cfg C, err error) {
		if data, err = yaml.Marshal(sec); err == nil {
			cfg, err = defaults(name, data)
		}
		return data, cfg, err
	}
	skipped := map[string][]string{}
	skip := func(c defaultClaim, why string) {
		skipped[why] = append(skipped[why], fmt.Sprintf("%d %s", c.line, c.path))
	}
	checked := map[claimKind]int{}
	for _, c := range claims {
		if c.kind == claimExplained {
			skip(c, "an explanation, not a value (default: ...)")
			continue
		}
		if why, ok := s.Skip[c.pattern]; ok {
			skip(c, why)
			continue
		}
		rel := strings.TrimPrefix(c.path, s.Path+".") // the path within C
		k, v := c.parent.Content[c.index], c.parent.Content[c.index+1]
		set := v // claimAsWritten: the value in the example
		if c.kind == claimValue {
			var x yaml.Node
			if err := yaml.Unmarshal([]byte(c.token), &x); err != nil || len(x.Content) != 1 {
				skip(c, "not YAML")
				continue
			}
			set = x.Content[0]
			if hasYAMLNull(set) {
				skip(c, "shorthand for several values ({200,301,302: 10m})")
				continue
			}
		}

		// Decode the variant with X written; a word that is no value of the key's type is prose.
		// zeroX is whether X decodes to the zero value, which the code replaces by its default.
		var withX C
		zeroX := c.kind == claimNone
		if c.kind != claimNone {
			c.parent.Content[c.index+1] = set
			data, cfg, err := variant()
			c.parent.Content[c.index+1] = v
			if err != nil {
				skip(c, "words, not a value of the key's type")
				continue
			}
			withX = cfg
			var decoded C // as written, before any default
			if err := yaml.Unmarshal(data, &decoded); err != nil {
				t.Errorf("%s:%d: %s: the variant that %s accepted does not decode without it: %v",
					s.File, k.Line, c.path, name, err)
				continue
			}
			x, ok := yamlField(reflect.ValueOf(decoded), rel)
			zeroX = ok && x.IsZero()
		}
		content := c.parent.Content
		c.parent.Content = slices.Delete(slices.Clone(content), c.index, c.index+2)
		_, without, errWithout := variant()
		c.parent.Content = content
		checked[c.kind]++
		t.Run(c.path, func(t *testing.T) {
			at := fmt.Sprintf("%s:%d: %s  # %s", s.File, k.Line, c.path, c.comment)
			if errWithout != nil {
				t.Fatalf("%s\nthe example without the key does not decode: %v", at, errWithout)
			}
			gotField, ok := yamlField(reflect.ValueOf(without), rel)
			if !ok {
				t.Fatalf("%s\nno field of the configuration has this path", at)
			}
			if c.kind != claimNone && !reflect.DeepEqual(without, withX) {
				wantField, _ := yamlField(reflect.ValueOf(withX), rel)
				t.Errorf("%s\nleaving the key out gives %s, writing it as %s gives %s", at,
					showValue(gotField), c.token+claimedValue(c, v), showValue(wantField))
			}
			// Writing a zero value takes the default just like leaving the key out, so the
			// comparison above cannot tell a zero X from the code's default.
			if zeroX && !gotField.IsZero() {
				t.Errorf("%s\nleaving the key out gives %s, not the zero value", at, showValue(gotField))
			}
		})
	}
	n := checked[claimValue] + checked[claimAsWritten] + checked[claimNone]
	if n == 0 {
		t.Fatalf("no default of %s in %s was checked: %d claims found", s.Path, s.File, len(claims))
	}
	t.Logf("%s, %s: %d defaults checked (%d values, %d as written, %d none); lines %v uncommented; "+
		"lines %v mention a default inside a sentence", s.File, s.Path, n, checked[claimValue],
		checked[claimAsWritten], checked[claimNone], uncommented, prose)
	for _, why := range slices.Sorted(maps.Keys(skipped)) {
		t.Logf("skipped %d, %s: %v", len(skipped[why]), why, skipped[why])
	}
}
