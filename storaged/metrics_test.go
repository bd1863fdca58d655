package storaged

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/mogway/mogway/internal/metrics/metricstest"
)

// TestMetricsCountRequests drives PUT, GET, HEAD, DELETE and a 404 through a real node and checks
// that /metrics moved by exactly that.
func TestMetricsCountRequests(t *testing.T) {
	n := startNode(t, nil)
	before := metricstest.Scrape(t, n.url(MetricsPath))

	body := bytes.Repeat([]byte("x"), 3000)
	for _, p := range []string{"/dev1/0/000/000/0000000001.fid", "/dev2/0/000/000/0000000002.fid"} {
		if code := n.put(t, p, body, nil); code != http.StatusOK && code != http.StatusCreated {
			t.Fatalf("PUT %s = %d, want 200 or 201", p, code)
		}
	}
	if resp, got := n.get(t, "GET", "/dev1/0/000/000/0000000001.fid", nil); resp.StatusCode != 200 || len(got) != len(body) {
		t.Fatalf("GET = %d, %d bytes", resp.StatusCode, len(got))
	}
	n.get(t, "HEAD", "/dev1/0/000/000/0000000001.fid", nil)
	if resp, _ := n.get(t, "GET", "/dev1/0/000/000/0000000099.fid", nil); resp.StatusCode != 404 {
		t.Fatalf("GET missing = %d, want 404", resp.StatusCode)
	}
	if resp, _ := n.get(t, "DELETE", "/dev2/0/000/000/0000000002.fid", nil); resp.StatusCode != 204 {
		t.Fatalf("DELETE = %d, want 204", resp.StatusCode)
	}

	raw := metricstest.Get(t, n.url(MetricsPath))
	after := metricstest.Parse(t, raw)
	metricstest.CheckMoves(t, before, after, []metricstest.Move{
		{Name: "mogway_storaged_requests_total", Labels: []string{"method", "PUT"}, Want: 2},
		{Name: "mogway_storaged_requests_total", Labels: []string{"method", "GET"}, Want: 2},
		{Name: "mogway_storaged_requests_total", Labels: []string{"method", "HEAD"}, Want: 1},
		{Name: "mogway_storaged_requests_total", Labels: []string{"method", "DELETE"}, Want: 1},
		{Name: "mogway_storaged_request_duration_seconds", Labels: []string{"method", "PUT"}, Want: 2},
		{Name: "mogway_storaged_request_duration_seconds", Labels: []string{"method", "GET"}, Want: 2},
		{Name: "mogway_storaged_puts_total", Labels: []string{"result", "created"}, Want: 2},
		{Name: "mogway_storaged_errors_total", Labels: []string{"kind", "not_found"}, Want: 1},
		{Name: "mogway_storaged_errors_total", Labels: []string{"kind", "server"}, Want: 0},
		{Name: "mogway_storaged_received_bytes_total", Want: 6000},
		{Name: "mogway_storaged_sent_bytes_total", Want: 3000},
	})
	if got := after.Value("mogway_storaged_open_requests"); got != 0 {
		t.Errorf("open_requests = %v after every request ended, want 0", got)
	}
	for _, dev := range []string{"dev1", "dev2"} {
		if got := after.Value("mogway_storaged_device_writable", "device", dev); got != 1 {
			t.Errorf("device_writable{%s} = %v, want 1", dev, got)
		}
		if got := after.Value("mogway_storaged_device_total_bytes", "device", dev); got <= 0 {
			t.Errorf("device_total_bytes{%s} = %v, want > 0", dev, got)
		}
	}
	for _, want := range []string{"go_goroutines", "process_cpu_seconds_total"} {
		if after[want] == nil {
			t.Errorf("%s missing: the Go runtime and process collectors are not registered", want)
		}
	}
	// No label carries a path or key.
	if strings.Contains(string(raw), ".fid") {
		t.Errorf("metrics mention a file path:\n%s", raw)
	}
	metricstest.Promtool(t, raw)
}

// TestMetricsAllowList: /metrics answers 403 outside metrics_allow, and two nodes in one process
// keep separate registries.
func TestMetricsAllowList(t *testing.T) {
	n := startNode(t, func(c *Config) { c.MetricsAllow = []string{"10.0.0.0/8"} })
	resp, _ := n.get(t, "GET", MetricsPath, nil)
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("GET %s from outside metrics_allow = %d, want 403", MetricsPath, resp.StatusCode)
	}
	other := startNode(t, nil)
	other.put(t, "/dev1/0/000/000/0000000001.fid", []byte("abc"), nil)
	m := metricstest.Scrape(t, other.url(MetricsPath))
	if got := m.Value("mogway_storaged_puts_total", "result", "created"); got != 1 {
		t.Errorf("second node's puts created = %v, want 1 (its own only)", got)
	}
}

func TestConfigMetricsAllow(t *testing.T) {
	c := Config{Docroot: "/srv", MetricsAllow: []string{"127.0.0.1", "not-a-net"}}
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), "metrics_allow[1]") {
		t.Errorf("Validate() = %v, want an error naming metrics_allow[1]", err)
	}
}
