package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestDistinctKeys(t *testing.T) {
	keys := distinctKeys(distinctCount)
	if len(keys) != distinctCount || keys[0] != "distinct-000" || keys[255] != "distinct-255" {
		t.Fatalf("distinctKeys(%d) = %d keys, first %q, last %q", distinctCount, len(keys), keys[0], keys[len(keys)-1])
	}
	if again := distinctKeys(distinctCount); !slices.Equal(keys, again) {
		t.Errorf("distinctKeys differs between calls")
	}
	seen := map[string]bool{}
	for _, k := range keys {
		if seen[k] {
			t.Errorf("distinctKeys: %q twice", k)
		}
		seen[k] = true
	}
}

func TestSpreadOrder(t *testing.T) {
	for _, tc := range []struct {
		n    int
		head []int
	}{
		{1, []int{0}},
		{2, []int{0, 1}},
		{3, []int{0, 2, 1}},
		{256, []int{0, 239, 222, 205}},
		{1000, []int{0, 919, 838}},
	} {
		got := spreadOrder(tc.n)
		if len(got) != tc.n || !slices.Equal(got[:len(tc.head)], tc.head) {
			t.Errorf("spreadOrder(%d) begins %v, want %v", tc.n, got[:min(len(got), len(tc.head))], tc.head)
		}
		sorted := slices.Sorted(slices.Values(got))
		for i, v := range sorted {
			if v != i {
				t.Errorf("spreadOrder(%d) is not a permutation of 0..%d: %v", tc.n, tc.n-1, got)
				break
			}
		}
	}
}

func TestRotationScript(t *testing.T) {
	for _, tc := range []struct {
		paths   []string
		want    string // the table of paths in the script
		wantErr string
	}{
		{[]string{"/bench/distinct-000"}, "local paths = {\n  \"/bench/distinct-000\",\n}\n", ""},
		{[]string{"/dev1/0/000/000/0000000003.fid", "/a?b=c&d"},
			"local paths = {\n  \"/dev1/0/000/000/0000000003.fid\",\n  \"/a?b=c&d\",\n}\n", ""},
		{nil, "", "no paths"},
		{[]string{"bench/x"}, "", "does not begin with /"},
		{[]string{"/a\"b"}, "", `holds '"'`},
		{[]string{"/a\\b"}, "", `holds '\\'`},
		{[]string{"/a b"}, "", `holds ' '`},
		{[]string{"/a\nb"}, "", `holds '\n'`},
		{[]string{"/é"}, "", "holds"},
	} {
		got, err := rotationScript(tc.paths)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("rotationScript(%q) = %v, want an error with %q", tc.paths, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !strings.HasPrefix(got, tc.want) || !strings.Contains(got, "request = function()") {
			t.Errorf("rotationScript(%q) = %q, %v; want it to begin %q and define request", tc.paths, got, err, tc.want)
		}
	}
}

// TestRotationScriptWithWrk runs the script in wrk against a loopback server: the requests of its one
// connection go through the paths in turn and start over.
func TestRotationScriptWithWrk(t *testing.T) {
	for _, tool := range []string{"wrk", "taskset"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (bench/run.sh installs it)", tool)
		}
	}
	var mu sync.Mutex
	var got []string // request paths in arrival order; guarded by mu
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.URL.RequestURI())
		mu.Unlock()
	}))
	defer srv.Close()
	paths := []string{"/bench/distinct-000", "/bench/distinct-002", "/dev1/0/000/000/0000000001.fid"}
	script, err := rotationScript(paths)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "rotate.lua")
	if err := os.WriteFile(file, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := wrkOutput(loadCPUs, srv.URL+"/unused", file, 1, time.Second, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := parseWrk(out); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) < 2*len(paths) {
		t.Fatalf("the server saw %d requests, want at least %d:\n%s", len(got), 2*len(paths), out)
	}
	// wrk calls request() once before the run to check the script, so the first request may take a
	// later path; from there the requests go round.
	start := slices.Index(paths, got[0])
	if start < 0 {
		t.Fatalf("request 0 asked %q, not one of %q", got[0], paths)
	}
	for i, p := range got {
		if want := paths[(start+i)%len(paths)]; p != want {
			t.Fatalf("request %d asked %q, want %q (requests begin %q)", i, p, want, got[:min(len(got), 8)])
		}
	}
}

func TestWrkArgs(t *testing.T) {
	base := []string{"-c", "1", "wrk", "-t1", "-c32", "-d2s", "--latency", "--timeout", "10s"}
	for _, tc := range []struct {
		name    string
		script  string
		headers []string
		tail    []string
	}{
		{"plain", "", nil, []string{"http://127.0.0.1:1/x"}},
		{"script", "/w/rotate.lua", nil, []string{"-s", "/w/rotate.lua", "http://127.0.0.1:1/x"}},
		{"headers", "", []string{"Host: a", "Range: bytes=0-1"},
			[]string{"-H", "Host: a", "-H", "Range: bytes=0-1", "http://127.0.0.1:1/x"}},
		{"script and header", "/w/r.lua", []string{"Host: a"},
			[]string{"-s", "/w/r.lua", "-H", "Host: a", "http://127.0.0.1:1/x"}},
	} {
		got := wrkArgs("1", "http://127.0.0.1:1/x", tc.script, 32, 2*time.Second, 10*time.Second, tc.headers)
		if want := append(slices.Clone(base), tc.tail...); !slices.Equal(got, want) {
			t.Errorf("%s: wrkArgs = %q, want %q", tc.name, got, want)
		}
	}
}

func TestSideURLs(t *testing.T) {
	for _, tc := range []struct {
		base  string
		paths []string
		want  []string
	}{
		{"http://127.0.0.1:18083/bench/4k", nil, []string{"http://127.0.0.1:18083/bench/4k"}},
		{"http://127.0.0.1:18083/bench/distinct-000", []string{"/bench/distinct-000", "/bench/distinct-239"},
			[]string{"http://127.0.0.1:18083/bench/distinct-000", "http://127.0.0.1:18083/bench/distinct-239"}},
		{"http://127.0.0.2:17500/dev1/x.fid?a=b", []string{"/dev1/y.fid"}, []string{"http://127.0.0.2:17500/dev1/y.fid"}},
	} {
		if got := sideURLs(tc.base, tc.paths); !slices.Equal(got, tc.want) {
			t.Errorf("sideURLs(%q, %q) = %q, want %q", tc.base, tc.paths, got, tc.want)
		}
	}
}

// TestDistinctScenario checks that the distinct-keys rows are selected by their word, the first
// follows the path-cache-off row, and they ask for the object group, so that store uploads the group
// only then.
func TestDistinctScenario(t *testing.T) {
	all := scenarios(&cluster{})
	i := slices.IndexFunc(all, func(s scenario) bool { return s.name == "miss 4 KiB, path cache off" })
	if i < 0 || i+1 >= len(all) || !strings.Contains(all[i+1].name, "distinct") {
		t.Fatalf("the scenario after the path-cache-off row is not the distinct-keys row")
	}
	sel, err := selectScenarios(all, "distinct")
	if err != nil || len(sel) != 2 {
		t.Fatalf("selectScenarios(distinct) = %d scenarios, %v; want the two distinct-keys rows (against proxy_pass and nginx asking the tracker)", len(sel), err)
	}
	for _, s := range sel {
		if !slices.Equal(s.objects, []string{distinctGroup}) {
			t.Errorf("scenario %q reads %q, want the group %q", s.name, s.objects, distinctGroup)
		}
	}
	for _, s := range all {
		if !strings.Contains(s.name, "distinct") && slices.Contains(s.objects, distinctGroup) {
			t.Errorf("scenario %q reads the distinct group", s.name)
		}
	}
}
