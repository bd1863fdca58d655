// Package metricstest reads a /metrics endpoint back in tests: Scrape parses it with the Prometheus
// text parser and Promtool lints it with `promtool check metrics`.
package metricstest

import (
	"bytes"
	"io"
	"net/http"
	"os/exec"
	"sort"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Families is a parsed scrape, by metric name.
type Families map[string]*dto.MetricFamily

// Get fetches url and returns its body, failing the test unless the answer is 200.
func Get(t testing.TB, url string) []byte {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %d %q, want 200", url, resp.StatusCode, body)
	}
	return body
}

// Parse parses text in the Prometheus exposition format.
func Parse(t testing.TB, body []byte) Families {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parse metrics: %v\n%s", err, body)
	}
	return fams
}

// Scrape is Parse(Get(url)).
func Scrape(t testing.TB, url string) Families {
	t.Helper()
	return Parse(t, Get(t, url))
}

// Value returns the value of the sample of name whose labels include every name=value pair of
// labels (given as "name", "value", ...), summed over the samples that match: a counter, gauge or
// untyped value, or a histogram's sample count. A missing metric is 0.
func (f Families) Value(name string, labels ...string) float64 {
	fam := f[name]
	if fam == nil {
		return 0
	}
	var sum float64
	for _, m := range fam.GetMetric() {
		if !match(m, labels) {
			continue
		}
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		case m.Histogram != nil:
			sum += float64(m.Histogram.GetSampleCount())
		case m.Untyped != nil:
			sum += m.Untyped.GetValue()
		}
	}
	return sum
}

// Has reports whether name has a sample with the given labels.
func (f Families) Has(name string, labels ...string) bool {
	fam := f[name]
	if fam == nil {
		return false
	}
	for _, m := range fam.GetMetric() {
		if match(m, labels) {
			return true
		}
	}
	return false
}

// LabelValues returns the sorted distinct values of label across name's samples.
func (f Families) LabelValues(name, label string) []string {
	seen := map[string]bool{}
	for _, m := range f[name].GetMetric() {
		for _, lp := range m.GetLabel() {
			if lp.GetName() == label {
				seen[lp.GetValue()] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for v := range seen {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}

func match(m *dto.Metric, labels []string) bool {
	for i := 0; i+1 < len(labels); i += 2 {
		found := false
		for _, lp := range m.GetLabel() {
			if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// Promtool runs `promtool check metrics` on body and fails the test on any complaint. It skips
// the test when promtool is not installed (scripts/test-deps.sh installs it for `make test`).
func Promtool(t testing.TB, body []byte) {
	t.Helper()
	bin := promtoolPath(t)
	cmd := exec.Command(bin, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

// PromtoolRules runs `promtool check rules` on the rule files.
func PromtoolRules(t testing.TB, files ...string) {
	t.Helper()
	bin := promtoolPath(t)
	out, err := exec.Command(bin, append([]string{"check", "rules"}, files...)...).CombinedOutput()
	if err != nil {
		t.Errorf("promtool check rules %s: %v\n%s", strings.Join(files, " "), err, out)
	}
}

func promtoolPath(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool is not installed (Debian package prometheus; scripts/test-deps.sh installs it): skipping the lint")
	}
	return bin
}

// Deltas returns a function that gives how far the sample of name with labels (as Value selects
// it) moved from the scrape before to the scrape after.
func Deltas(before, after Families) func(name string, labels ...string) float64 {
	return func(name string, labels ...string) float64 {
		return after.Value(name, labels...) - before.Value(name, labels...)
	}
}

// Move is how far a sample should move between two scrapes: the sample of Name with Labels, as
// Value selects it, by Want.
type Move struct {
	Name   string
	Labels []string
	Want   float64
}

// CheckMoves reports an error on t for every move that the samples did not make from the scrape
// before to the scrape after.
func CheckMoves(t testing.TB, before, after Families, moves []Move) {
	t.Helper()
	delta := Deltas(before, after)
	for _, m := range moves {
		if got := delta(m.Name, m.Labels...); got != m.Want {
			t.Errorf("%s%v moved by %v, want %v", m.Name, m.Labels, got, m.Want)
		}
	}
}
