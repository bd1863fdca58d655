package main

import (
	"path/filepath"
	"regexp"
	"testing"

	"github.com/mogway/mogway/internal/metrics/metricstest"
	"github.com/mogway/mogway/internal/testutil"
)

// TestE2EMetricsEndpoints starts the three daemons as `mogway tracker`, `storaged` and `gateway`
// with the listeners set by flag and config file (tracker --http-listen, storaged's own port,
// gateway metrics_listen) and checks that each answers /metrics, that promtool accepts it, and
// that the tracker's status page answers.
func TestE2EMetricsEndpoints(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tr := startDaemon(t, "tracker", "--listen", "127.0.0.71:0", "--http-listen", "127.0.0.71:0",
		"--db", "sqlite:"+filepath.Join(dir, "t.db"))
	trWeb := tr.waitLog(t, regexp.MustCompile(`msg="tracker status page and metrics" url=(\S+)/`))[1]
	trAddr := tr.waitLog(t, trackerStartingRE)[1]
	st := startDaemon(t, "storaged", "--listen", "127.0.0.72:0", "--mgmt-listen", "off", "--docroot", dir)
	stAddr := st.waitLog(t, storagedServingRE)[1]
	cfg := writeConfig(t, `gateway:
  access_log: "off"
  metrics_listen: "127.0.0.73:0"
  routes:
    - prefix: /d/
      domain: d
`)
	gw := startDaemon(t, "gateway", "-c", cfg, "--listen", "127.0.0.73:0", "--trackers="+trAddr)
	gwMetrics := gw.waitLog(t, regexp.MustCompile(`msg="gateway metrics" url=(\S+)`))[1]

	for url, want := range map[string]string{
		trWeb + "/metrics":              "mogway_tracker_query_workers",
		"http://" + stAddr + "/metrics": "mogway_storaged_requests_total",
		gwMetrics:                       "mogway_gateway_reloads_total",
	} {
		raw := metricstest.Get(t, url)
		if m := metricstest.Parse(t, raw); m[want] == nil {
			t.Errorf("GET %s lacks %s", url, want)
		}
		metricstest.Promtool(t, raw)
	}
	if code, body := testutil.Fetch(t, "GET", trWeb+"/", nil, nil); code != 200 || !regexp.MustCompile(`mogway cluster`).Match(body) {
		t.Errorf("GET %s/ = %d, want the status page", trWeb, code)
	}
}
