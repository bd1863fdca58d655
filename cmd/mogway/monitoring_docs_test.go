package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mogway/mogway/cache"
	"github.com/mogway/mogway/gateway"
	"github.com/mogway/mogway/internal/clustertest"
	"github.com/mogway/mogway/internal/conf"
	"github.com/mogway/mogway/internal/metrics/metricstest"
	"github.com/mogway/mogway/internal/testutil"
	"github.com/mogway/mogway/purge"
)

var metricNameRE = regexp.MustCompile(`mogway_(storaged|tracker|gateway)_[a-z_]+`)

// TestMonitoringDocs scrapes every daemon of a running cluster and checks docs/monitoring.md
// against what they serve: every metric served is documented and every documented metric is
// served; the example alert rules and Grafana dashboard use only served metrics, and promtool
// accepts the rules and every endpoint's output.
func TestMonitoringDocs(t *testing.T) {
	c := clustertest.New(t, clustertest.Options{Domains: map[string]map[string]int{"d": {"c": 1}}})
	c.WaitWritable(t, 0, c.AllDevIDs()...)
	c.Upload(t, "d", "k", "c", []byte("hello"))

	mln := testutil.Listen(t, "127.0.0.1:0")
	gw, err := gateway.New(gateway.Config{
		Trackers: c.TrackerAddrs(),
		Routes:   []gateway.Route{{Prefix: "/d/", Domain: "d"}},
		Cache:    &cache.Config{Memory: 8 * conf.MiB, Valid: map[string]conf.Duration{"200": conf.Duration(time.Minute)}},
		Purge:    &purge.Config{},
	}, gateway.Deps{AccessLog: discard{}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	gln := testutil.Listen(t, "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 2)
	go func() { done <- gw.Serve(ctx, gln) }()
	go func() { done <- gw.ServeMetrics(ctx, mln) }()
	t.Cleanup(func() {
		cancel()
		<-done
		<-done
	})
	metricstest.Get(t, "http://"+gln.Addr().String()+"/d/k")
	trWeb := httptest.NewServer(c.Tracker(0).HTTPHandler())
	t.Cleanup(trWeb.Close)
	node, _ := c.Node(0)

	served := map[string]bool{}
	for _, url := range []string{"http://" + node + "/metrics", trWeb.URL + "/metrics", "http://" + mln.Addr().String() + "/metrics"} {
		raw := metricstest.Get(t, url)
		metricstest.Promtool(t, raw)
		for name := range metricstest.Parse(t, raw) {
			if strings.HasPrefix(name, "mogway_") {
				served[name] = true
			}
		}
	}
	doc := readDoc(t, "../../docs/monitoring.md")
	documented := map[string]bool{}
	for _, n := range metricNameRE.FindAllString(doc, -1) {
		documented[n] = true
	}
	for _, n := range slices.Sorted(maps.Keys(served)) {
		if !documented[n] {
			t.Errorf("%s is served but not documented in docs/monitoring.md", n)
		}
	}
	for _, n := range slices.Sorted(maps.Keys(documented)) {
		if !served[n] {
			t.Errorf("docs/monitoring.md documents %s, which no daemon serves", n)
		}
	}

	rules := readDoc(t, "../../docs/mogway-alerts.yml")
	dash := readDoc(t, "../../docs/grafana-dashboard.json")
	if !json.Valid([]byte(dash)) {
		t.Error("docs/grafana-dashboard.json is not valid JSON")
	}
	for file, text := range map[string]string{"mogway-alerts.yml": rules, "grafana-dashboard.json": dash} {
		for _, n := range metricNameRE.FindAllString(text, -1) {
			base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(n, "_bucket"), "_sum"), "_count")
			if !served[base] {
				t.Errorf("docs/%s uses %s, which no daemon serves", file, n)
			}
		}
	}
	metricstest.PromtoolRules(t, "../../docs/mogway-alerts.yml")
	checkDashboardQueries(t, dash)
}

// checkDashboardQueries has promtool parse every query of the dashboard, as recording rules with
// Grafana's $__rate_interval set to 5m.
func checkDashboardQueries(t *testing.T, dash string) {
	t.Helper()
	var d struct {
		Panels []struct {
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal([]byte(dash), &d); err != nil {
		t.Fatalf("docs/grafana-dashboard.json: %v", err)
	}
	var b strings.Builder
	b.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	n := 0
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			expr := strings.ReplaceAll(tg.Expr, "$__rate_interval", "5m")
			q, _ := json.Marshal(expr) // a JSON string is a YAML string
			fmt.Fprintf(&b, "      - record: dashboard:query%d\n        expr: %s\n", n, q)
			n++
		}
	}
	if n == 0 {
		t.Fatal("docs/grafana-dashboard.json has no queries")
	}
	f := filepath.Join(t.TempDir(), "dashboard-rules.yml")
	if err := os.WriteFile(f, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	metricstest.PromtoolRules(t, f)
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

func readDoc(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
