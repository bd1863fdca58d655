package main

import (
	"net/http/httptest"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mogway/mogway/internal/clustertest"
)

func TestCommandCount(t *testing.T) {
	const head = "# HELP mogway_tracker_commands_total Query commands answered.\n# TYPE mogway_tracker_commands_total counter\n"
	for _, tc := range []struct {
		name, scrape string
		want         float64
		ok           bool
	}{
		{"ok and error results summed, other commands left out", head +
			`mogway_tracker_commands_total{command="get_paths",result="ok"} 1200` + "\n" +
			`mogway_tracker_commands_total{command="get_paths",result="unknown_key"} 3` + "\n" +
			`mogway_tracker_commands_total{command="create_open",result="ok"} 7` + "\n", 1203, true},
		{"labels in either order", head +
			`mogway_tracker_commands_total{result="ok",command="get_paths"} 5` + "\n", 5, true},
		{"a larger float", head +
			`mogway_tracker_commands_total{command="get_paths",result="ok"} 1.5e+06` + "\n", 1.5e6, true},
		{"no get_paths answered yet", head +
			`mogway_tracker_commands_total{command="noop",result="ok"} 2` + "\n", 0, true},
		{"a command whose name holds get_paths", head +
			`mogway_tracker_commands_total{command="get_paths_x",result="ok"} 9` + "\n", 0, true},
		{"other metrics around it", "# TYPE go_goroutines gauge\ngo_goroutines 12\n" + head +
			`mogway_tracker_commands_total{command="get_paths",result="ok"} 4` + "\n", 4, true},
		{"no such metric", "# TYPE go_goroutines gauge\ngo_goroutines 12\n", 0, false},
		{"empty scrape", "", 0, false},
		{"not the text format", "<html>404</html>\n", 0, false},
		{"a bad value", head + `mogway_tracker_commands_total{command="get_paths",result="ok"} many` + "\n", 0, false},
	} {
		got, err := commandCount([]byte(tc.scrape), "get_paths")
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("%s: commandCount = %v, %v; want %v, ok %v", tc.name, got, err, tc.want, tc.ok)
		}
	}
}

// TestGetPathsAnsweredRealTracker reads the count from a real tracker's /metrics, so a renamed
// metric or label fails here rather than reading as zero lookups in a bench run.
func TestGetPathsAnsweredRealTracker(t *testing.T) {
	c := clustertest.New(t, clustertest.Options{Domains: map[string]map[string]int{"bench": {"one": 1}}})
	c.WaitWritable(t, 0, c.AllDevIDs()...)
	web := httptest.NewServer(c.Tracker(0).HTTPHandler())
	t.Cleanup(web.Close)
	c.Upload(t, "bench", "k", "one", []byte("four"))

	before, err := getPathsAnswered(web.Client(), web.URL+"/metrics")
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		c.GetPaths(t, "bench", "k")
	}
	after, err := getPathsAnswered(web.Client(), web.URL+"/metrics")
	if err != nil {
		t.Fatal(err)
	}
	if after-before != 3 {
		t.Errorf("get_paths answered moved by %v over 3 get_paths, want 3", after-before)
	}
	if _, err := getPathsAnswered(web.Client(), web.URL+"/nothing"); err == nil {
		t.Error("getPathsAnswered of a 404 page = nil error, want one")
	}
}

func TestFmtShares(t *testing.T) {
	for _, tc := range []struct {
		shares []roleShare
		prec   int
		want   string
	}{
		{[]roleShare{{"gw", 37.5}, {"tracker", 4.6}, {"nodes", 24.0}}, 1, "37.5 gw + 4.6 tracker + 24.0 nodes = 66.1"},
		{[]roleShare{{"nginx", 29.1}, {"nodes", 18.1}}, 1, "29.1 nginx + 18.1 nodes = 47.2"},
		{[]roleShare{{"gw", 31.84}, {"tracker", 0}, {"nodes", 19.1}}, 1, "31.8 gw + 0.0 tracker + 19.1 nodes = 50.9"},
		{[]roleShare{{"gw", 241.26}, {"tracker", 0.04}, {"nodes", 0.3}}, 1, "241.3 gw + 0.0 tracker + 0.3 nodes = 241.6"},
		{[]roleShare{{"gw", 0.153}, {"tracker", 0.158}, {"nodes", 0.5849}}, 2, "0.15 gw + 0.16 tracker + 0.58 nodes = 0.90"},
		{[]roleShare{{"nodes", 16.6}}, 1, "16.6 nodes"},
		{nil, 2, "–"},
	} {
		if got := fmtShares(tc.shares, tc.prec); got != tc.want {
			t.Errorf("fmtShares(%v, %d) = %q, want %q", tc.shares, tc.prec, got, tc.want)
		}
	}
}

func TestMedianIndex(t *testing.T) {
	for _, tc := range []struct {
		xs   []float64
		want int
	}{
		{[]float64{66}, 0},
		{[]float64{70, 50, 60}, 2},
		{[]float64{50, 70, 60}, 2},
		{[]float64{60, 50, 70}, 0},
		{[]float64{4, 1, 3, 2}, 3},       // the lower of the two middle values, 2
		{[]float64{5, 5, 5}, 1},          // ties keep their order
		{[]float64{9, 1, 8, 2, 7}, 4},    // 7
		{[]float64{1, 2, 3, 4, 5, 6}, 2}, // 3
		{nil, -1},
	} {
		if got := medianIndex(tc.xs); got != tc.want {
			t.Errorf("medianIndex(%v) = %d, want %d", tc.xs, got, tc.want)
		}
	}
}

func TestShares(t *testing.T) {
	rs := []role{{name: "gw"}, {name: "tracker"}, {name: "nodes"}}
	hz := int64(clockTicks)
	got := shares(rs, []int64{100, 7, 40}, []int64{100 + hz, 7, 40 + hz/2}, 1000)
	want := []roleShare{{"gw", 1000}, {"tracker", 0}, {"nodes", 500}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("shares = %v, want %v", got, want)
	}
	if got := total(want); got != 1500 {
		t.Errorf("total(%v) = %v, want 1500", want, got)
	}
}

// TestSharesPerMiB: the transfer rows' shares, per MiB moved.
func TestSharesPerMiB(t *testing.T) {
	rs := []role{{name: "gw"}, {name: "nodes"}}
	hz := int64(clockTicks)
	// 2 s of gateway CPU and 0.5 s of the nodes' over a 256 MiB transfer.
	got := shares(rs, []int64{10, 20}, []int64{10 + 2*hz, 20 + hz/2}, float64(256<<20)/(1<<20))
	want := []roleShare{{"gw", 2e6 / 256}, {"nodes", 0.5e6 / 256}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("shares per MiB = %v, want %v", got, want)
	}
}

// TestTransferRow: a transfer row's CPU is per MiB, and both tables say so.
func TestTransferRow(t *testing.T) {
	tr := transferred{mbps: [2]float64{420, 326}, cpu: [2]float64{2400, 3100},
		split: [2][]roleShare{{{"gw", 1400}, {"tracker", 0}, {"nodes", 1000}}, {{"nginx", 2100}, {"nodes", 1000}}}}
	r := tr.row("upload 256 MiB through the gateway (one client)", "nginx proxy_pass", [2]int64{50 << 20, 10 << 20})
	var b strings.Builder
	writeTable(&b, []row{r, {Scenario: "streamed download 1024 MiB (one client)", Unit: "MB/s", Mogway: 900, Reference: 800, RefName: "nginx proxy_pass"}})
	writeBreakdown(&b, []row{r})
	out := b.String()
	for _, want := range []string{
		"| upload 256 MiB through the gateway (one client) | 420 MB/s | 326 MB/s (nginx proxy_pass) | 1.29× | 2400 / 3100 per MiB |",
		"| streamed download 1024 MiB (one client) | 900 MB/s | 800 MB/s (nginx proxy_pass) | 1.12× | – / – |",
		"| upload 256 MiB through the gateway (one client) per MiB | 1400.0 gw + 0.0 tracker + 1000.0 nodes = 2400.0 | 2100.0 nginx + 1000.0 nodes = 3100.0 | – |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("tables lack %q:\n%s", want, out)
		}
	}
}

// TestRoles groups real processes: the mogway side of a proxied row, two storage nodes in one role.
func TestRoles(t *testing.T) {
	var ps []*proc
	for _, name := range []string{"gateway-18082", "tracker", "storaged1", "storaged2"} {
		cmd := exec.Command("sleep", "30")
		if err := cmd.Start(); err != nil {
			t.Skipf("sleep: %v", err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		ps = append(ps, &proc{name: name, cmd: cmd})
	}
	ps = append(ps, nil, ps[1]) // a missing daemon, and one listed twice
	got := roles(ps...)
	pid := func(i int) int { return ps[i].cmd.Process.Pid }
	want := []role{{"gw", []int{pid(0)}}, {"tracker", []int{pid(1)}}, {"nodes", []int{pid(2), pid(3)}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("roles = %v, want %v", got, want)
	}
	if got, want := pids(ps...), []int{pid(0), pid(1), pid(2), pid(3)}; !reflect.DeepEqual(got, want) {
		t.Errorf("pids = %v, want %v", got, want)
	}
}

// TestRoleTicks reads the CPU time of this test's own process, which has used some: a role with it
// counts at least what was read before, and a role without processes counts nothing.
func TestRoleTicks(t *testing.T) {
	self := os.Getpid()
	before, err := cpuTicks(self)
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	spent := 0
	for deadline := time.Now().Add(10 * time.Second); before == 0 && time.Now().Before(deadline); {
		for i := range 10_000_000 { // spend CPU until it shows in /proc
			spent += i
		}
		if before, err = cpuTicks(self); err != nil {
			t.Fatal(err)
		}
	}
	if before == 0 {
		t.Fatalf("this process shows no CPU time in /proc after %d sums", spent)
	}
	ticks := roleTicks([]role{{"self", []int{self}}, {"none", nil}})
	if len(ticks) != 2 || ticks[0] < before || ticks[1] != 0 {
		t.Errorf("roleTicks = %v, want [>= %d, 0]", ticks, before)
	}
}

func TestRoleName(t *testing.T) {
	for name, want := range map[string]string{
		"gateway-18081": "gw", "gateway-18087": "gw", "tracker": "tracker", "storaged1": "nodes", "storaged2": "nodes",
		"nginx": "nginx", "nginx-image": "nginx", "nginx-hung": "nginx",
	} {
		if got := roleName(&proc{name: name}); got != want {
			t.Errorf("roleName(%q) = %q, want %q", name, got, want)
		}
	}
}

func TestWriteBreakdown(t *testing.T) {
	rows := []row{
		{Scenario: "storage node GET 4 KiB", Shares: [2][]roleShare{{{"nodes", 16.6}}, {{"nginx", 16.5}, {"nodes", 0}}}},
		{Scenario: "streamed download 1024 MiB (one client)"}, // no CPU figure: left out
		{Scenario: "miss path 4 KiB (tracker get_paths every request + storage fetch)",
			Shares:  [2][]roleShare{{{"gw", 37.5}, {"tracker", 4.6}, {"nodes", 24.0}}, {{"nginx", 29.1}, {"nodes", 18.1}}},
			Lookups: [2]bool{true, false}, GetPaths: [2]float64{0.5, 0}},
		{Scenario: "cache hit 4 KiB", Shares: [2][]roleShare{{{"gw", 16.0}, {"tracker", 0}, {"nodes", 0.1}}, {{"nginx", 20.3}, {"nodes", 0}}},
			Lookups: [2]bool{true, false}},
		{Scenario: "miss path 4 KiB, against nginx asking the tracker",
			Shares:  [2][]roleShare{{{"gw", 37.5}, {"tracker", 4.6}, {"nodes", 24.0}}, {{"nginx", 80.2}, {"tracker", 30.1}, {"nodes", 50.0}}},
			Lookups: [2]bool{true, true}, GetPaths: [2]float64{0.07, 1},
			Switches: [2][]roleShare{{{"gw", 0.29}, {"tracker", 0.16}, {"nodes", 0.58}}, {{"nginx", 0.3}, {"tracker", 1.9}, {"nodes", 1.1}}}},
	}
	var b strings.Builder
	writeBreakdown(&b, rows)
	out := b.String()
	for _, line := range []string{
		"## CPU µs per request by process",
		"| scenario | mogway | reference | get_paths/req | switches/req mogway | switches/req reference |",
		"| storage node GET 4 KiB | 16.6 nodes | 16.5 nginx + 0.0 nodes = 16.5 | – | – | – |",
		"| miss path 4 KiB (tracker get_paths every request + storage fetch) | 37.5 gw + 4.6 tracker + 24.0 nodes = 66.1 | 29.1 nginx + 18.1 nodes = 47.2 | 0.50 | – | – |",
		"| cache hit 4 KiB | 16.0 gw + 0.0 tracker + 0.1 nodes = 16.1 | 20.3 nginx + 0.0 nodes = 20.3 | 0.00 | – | – |",
		"| miss path 4 KiB, against nginx asking the tracker | 37.5 gw + 4.6 tracker + 24.0 nodes = 66.1 | " +
			"80.2 nginx + 30.1 tracker + 50.0 nodes = 160.3 | 0.07 / 1.00 | 0.29 gw + 0.16 tracker + 0.58 nodes = 1.03 | " +
			"0.30 nginx + 1.90 tracker + 1.10 nodes = 3.30 |",
	} {
		if !strings.Contains(out, line+"\n") {
			t.Errorf("writeBreakdown output lacks %q:\n%s", line, out)
		}
	}
	if strings.Contains(out, "download") {
		t.Errorf("writeBreakdown printed a row without a CPU figure:\n%s", out)
	}
	b.Reset()
	writeBreakdown(&b, rows[1:2])
	if b.Len() != 0 {
		t.Errorf("writeBreakdown of rows without CPU figures = %q, want nothing", b.String())
	}
}

// TestWriteProfiles: the profiles section says which rows it holds: those where mogway was slower
// and the tracker's, or (a -pgo run) every row with a mogway process; rows without a profile are left
// out.
func TestWriteProfiles(t *testing.T) {
	rows := []row{
		{Scenario: "upstream group 4 KiB", Mogway: 97, Reference: 100, RefName: "nginx proxy_pass", Profile: "flat flat%"},
		{Scenario: "cache hit 4 KiB", Mogway: 150, Reference: 100, RefName: "nginx proxy_cache"},
		{Scenario: "tracker get_paths, verify", Mogway: 40000, Profile: "Syscall6"},
	}
	for _, every := range []bool{false, true} {
		var b strings.Builder
		writeProfiles(&b, rows, every)
		out := b.String()
		heading := "## CPU profiles: where mogway is slower, and the tracker rows"
		if every {
			heading = "## CPU profiles of every row with a mogway process (-pgo)"
		}
		for _, want := range []string{heading + "\n", "### upstream group 4 KiB (0.97× of nginx proxy_pass)\n\n```\nflat flat%\n```",
			"### tracker get_paths, verify\n\n```\nSyscall6\n```"} {
			if !strings.Contains(out, want) {
				t.Errorf("every=%v: profiles lack %q:\n%s", every, want, out)
			}
		}
		if strings.Contains(out, "cache hit") || strings.Count(out, "## CPU profiles") != 1 {
			t.Errorf("every=%v: profiles = %s, want one heading and no row without a profile", every, out)
		}
	}
}
