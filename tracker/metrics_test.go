package tracker_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mogway/mogway/internal/clustertest"
	"github.com/mogway/mogway/internal/metrics/metricstest"
	"github.com/mogway/mogway/internal/testutil"
	"github.com/mogway/mogway/tracker"
	"github.com/mogway/mogway/tracker/client"
	"github.com/mogway/mogway/tracker/mogproto"
	"github.com/mogway/mogway/tracker/store"
	"github.com/mogway/mogway/tracker/store/sqlite"
)

// TestMetricsCountCommands drives uploads and get_paths through a real cluster and checks that the
// tracker's /metrics moved by exactly what was done, and that the cluster gauges show it.
func TestMetricsCountCommands(t *testing.T) {
	c := clustertest.New(t, clustertest.Options{Domains: map[string]map[string]int{"photos": {"thumb": 1}}})
	c.WaitWritable(t, 0, c.AllDevIDs()...)
	web := httptest.NewServer(c.Tracker(0).HTTPHandler())
	t.Cleanup(web.Close)

	before := metricstest.Scrape(t, web.URL+"/metrics")
	c.Upload(t, "photos", "a", "thumb", []byte("hello"))
	c.Upload(t, "photos", "b", "thumb", []byte("world"))
	for range 3 {
		c.GetPaths(t, "photos", "a")
	}
	ctx, cancel := context.WithTimeout(context.Background(), clustertest.Timeout)
	defer cancel()
	_, err := c.Client().GetPaths(ctx, "photos", "missing", client.GetPathsOptions{NoVerify: true})
	var pe *mogproto.Error
	if !errors.As(err, &pe) || pe.Code != mogproto.ErrUnknownKey {
		t.Fatalf("get_paths of a missing key = %v, want ERR unknown_key", err)
	}

	// A line naming no command counts as "unknown", whatever it says.
	conn := testutil.Dial(t, c.TrackerAddrs()[0])
	defer conn.Close()
	if _, err := conn.Write([]byte("no_such_command_x domain=photos\r\n")); err != nil {
		t.Fatal(err)
	}
	if line, err := bufio.NewReader(conn).ReadString('\n'); err != nil || !strings.HasPrefix(line, "ERR unknown_command") {
		t.Fatalf("unknown command answered %q, %v", line, err)
	}

	raw := metricstest.Get(t, web.URL+"/metrics")
	after := metricstest.Parse(t, raw)
	delta := metricstest.Deltas(before, after)
	const commands = "mogway_tracker_commands_total"
	metricstest.CheckMoves(t, before, after, []metricstest.Move{
		{Name: commands, Labels: []string{"command", "create_open", "result", "ok"}, Want: 2},
		{Name: commands, Labels: []string{"command", "create_close", "result", "ok"}, Want: 2},
		{Name: commands, Labels: []string{"command", "get_paths", "result", "ok"}, Want: 3},
		{Name: commands, Labels: []string{"command", "get_paths", "result", "unknown_key"}, Want: 1},
		{Name: commands, Labels: []string{"command", "delete"}, Want: 0},
		{Name: commands, Labels: []string{"command", "unknown", "result", "unknown_command"}, Want: 1},
	})
	if got := delta("mogway_tracker_command_duration_seconds", "command", "get_paths"); got != 4 {
		t.Errorf("command_duration_seconds{get_paths} count moved by %v, want 4", got)
	}
	if got := after.Value("mogway_tracker_files", "domain", "photos", "class", "thumb"); got != 2 {
		t.Errorf("files{photos,thumb} = %v, want 2", got)
	}
	if got := after.Value("mogway_tracker_class_mindevcount", "domain", "photos", "class", "thumb"); got != 1 {
		t.Errorf("class_mindevcount{photos,thumb} = %v, want 1", got)
	}
	devs := len(c.AllDevIDs())
	if got := after.Value("mogway_tracker_device_up"); got != float64(devs) {
		t.Errorf("sum of device_up = %v, want %d", got, devs)
	}
	if got := after.Value("mogway_tracker_devices", "status", "alive", "observed", "writeable"); got != float64(devs) {
		t.Errorf("devices{alive,writeable} = %v, want %d", got, devs)
	}
	if !after.Has("mogway_tracker_queue_length", "queue", "replicate") {
		t.Error("queue_length{replicate} missing")
	}
	if got := after.Value("mogway_tracker_query_workers"); got != 20 {
		t.Errorf("query_workers = %v, want 20", got)
	}
	if after["go_goroutines"] == nil || after["process_cpu_seconds_total"] == nil {
		t.Error("the Go runtime and process collectors are not registered")
	}
	metricstest.Promtool(t, raw)
}

// TestMetricsDeviceDown: a stopped node's device shows as not up.
func TestMetricsDeviceDown(t *testing.T) {
	c := clustertest.New(t, clustertest.Options{})
	c.WaitWritable(t, 0, c.AllDevIDs()...)
	web := httptest.NewServer(c.Tracker(0).HTTPHandler())
	t.Cleanup(web.Close)
	c.StopNode(t, 1)
	dev := c.DevIDs(1)[0]
	c.WaitObserved(t, 0, "unreachable", dev)
	m := metricstest.Scrape(t, web.URL+"/metrics")
	if got := m.Value("mogway_tracker_device_up", "host", c.HostName(1)); got != 0 {
		t.Errorf("device_up of the stopped node = %v, want 0", got)
	}
	if got := m.Value("mogway_tracker_device_up", "host", c.HostName(0)); got != 1 {
		t.Errorf("device_up of the running node = %v, want 1", got)
	}
}

// TestStatusPageEscapes: the status page shows hosts and devices, and a domain or class whose name
// holds markup shows as text.
func TestStatusPageEscapes(t *testing.T) {
	const evil = `<script>alert("x")</script>`
	c := clustertest.New(t, clustertest.Options{Domains: map[string]map[string]int{evil: {evil + "c": 1}}})
	c.WaitWritable(t, 0, c.AllDevIDs()...)
	web := httptest.NewServer(c.Tracker(0).HTTPHandler())
	t.Cleanup(web.Close)
	resp, err := http.Get(web.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET / = %d %q, want 200 text/html", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	page := string(body)
	if strings.Contains(page, "<script") {
		t.Errorf("the page holds a <script> element:\n%s", page)
	}
	for _, want := range []string{"&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;", c.HostName(0), c.HostName(1), "dev1", "dev2", "writeable"} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q:\n%s", want, page)
		}
	}
	resp, err = http.Get(web.URL + "/status.json")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"Name": "dev1"`) {
		t.Errorf("GET /status.json = %d %s", resp.StatusCode, body)
	}
}

// TestMetricsFsckProgress: after fsck_start the metrics show fsck's end fid, and its progress
// reaches it.
func TestMetricsFsckProgress(t *testing.T) {
	c := clustertest.New(t, clustertest.Options{Domains: map[string]map[string]int{"d": {"c": 1}}})
	c.WaitWritable(t, 0, c.AllDevIDs()...)
	var last int64
	for _, k := range []string{"a", "b", "c"} {
		last = c.Upload(t, "d", k, "c", []byte(k))
	}
	web := httptest.NewServer(c.Tracker(0).HTTPHandler())
	t.Cleanup(web.Close)
	if m := metricstest.Scrape(t, web.URL+"/metrics"); m.Value("mogway_tracker_fsck_running") != 0 || m.Value("mogway_tracker_fsck_end_fid") != 0 {
		t.Errorf("before fsck: running %v, end fid %v; want 0, 0", m.Value("mogway_tracker_fsck_running"), m.Value("mogway_tracker_fsck_end_fid"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), clustertest.Timeout)
	defer cancel()
	if err := c.Client().FsckStart(ctx); err != nil {
		t.Fatal(err)
	}
	clustertest.Eventually(t, "fsck checked every fid", func() bool {
		m := metricstest.Scrape(t, web.URL+"/metrics")
		return m.Value("mogway_tracker_fsck_end_fid") == float64(last) && m.Value("mogway_tracker_fsck_checked_fid") == float64(last)
	})
	resp, err := http.Get(web.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := "100% (fid " + strconv.FormatInt(last, 10) + " of " + strconv.FormatInt(last, 10) + ")"; !strings.Contains(string(body), want) {
		t.Errorf("the page lacks %q:\n%s", want, body)
	}
}

func TestConfigHTTPListen(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"", "127.0.0.1:7080", true},
		{"off", "", true},
		{"10.0.0.1:7080", "10.0.0.1:7080", true},
		{"7080", "", false},
	} {
		cfg := tracker.Config{HTTPListen: tc.in}
		err := cfg.Validate()
		if (err == nil) != tc.ok {
			t.Errorf("Validate(http_listen %q) = %v, want ok %v", tc.in, err, tc.ok)
			continue
		}
		if tc.ok && cfg.HTTPListenAddr() != tc.want {
			t.Errorf("HTTPListenAddr(%q) = %q, want %q", tc.in, cfg.HTTPListenAddr(), tc.want)
		}
	}
}

// claimFaults is a store whose claims on the delete queue fail while fail is set, so that the
// delete worker's passes fail.
type claimFaults struct {
	store.Store
	fail atomic.Bool
}

func (s *claimFaults) Claim(ctx context.Context, q store.Queue, now int64, lease time.Duration, limit int) ([]store.Job, error) {
	if q == store.QueueDelete && s.fail.Load() {
		return nil, errors.New("injected: claim failed")
	}
	return s.Store.Claim(ctx, q, now, lease, limit)
}

// TestMetricsWorkerLastPassFailed: worker_last_pass_failed is 1 for a worker whose last pass failed
// (and 0 for the others), and back to 0 after its next good pass.
func TestMetricsWorkerLastPassFailed(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), clustertest.Timeout)
	defer cancel()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "tracker.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() }) // after the cluster's cleanup, registered later
	faults := &claimFaults{Store: st}
	c := clustertest.New(t, clustertest.Options{Store: faults})
	web := httptest.NewServer(c.Tracker(0).HTTPHandler())
	t.Cleanup(web.Close)
	const failed, passes = "mogway_tracker_worker_last_pass_failed", "mogway_tracker_worker_passes_total"
	// waitPass waits for a delete pass that ends after now and returns the scrape that shows it.
	waitPass := func(what string) metricstest.Families {
		t.Helper()
		start := metricstest.Scrape(t, web.URL+"/metrics").Value(passes, "worker", "delete")
		var m metricstest.Families
		clustertest.Eventually(t, what, func() bool {
			m = metricstest.Scrape(t, web.URL+"/metrics")
			// Two more passes: the first may have started before the change.
			return m.Value(passes, "worker", "delete") >= start+2
		})
		return m
	}
	check := func(m metricstest.Families, when string, wantDelete float64) {
		t.Helper()
		workers := m.LabelValues(failed, "worker")
		if !slices.Contains(workers, "delete") || !slices.Contains(workers, "replicate") {
			t.Fatalf("%s: %s has workers %q, want delete and replicate among them", when, failed, workers)
		}
		for _, w := range workers {
			want := 0.0
			if w == "delete" {
				want = wantDelete
			}
			if got := m.Value(failed, "worker", w); got != want {
				t.Errorf("%s: %s{worker=%q} = %v, want %v", when, failed, w, got, want)
			}
		}
	}
	check(waitPass("good delete passes"), "before the fault", 0)
	faults.fail.Store(true)
	check(waitPass("failed delete passes"), "while claims fail", 1)
	faults.fail.Store(false)
	check(waitPass("good delete passes again"), "after the fault", 0)
}
