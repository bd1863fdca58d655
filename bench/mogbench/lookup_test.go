package main

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mogway/mogway/internal/clustertest"
)

// TestLookupNginx runs the lookup rows' peer, Debian's nginx with its Lua module, against a real
// tracker and storage nodes: it answers a stored key with its bytes (a key that needs escaping
// too), an unknown key with 404, and asks the tracker once per request. It needs the packages
// bench/run.sh installs (nginx-light, libnginx-mod-http-lua) and is skipped without them.
func TestLookupNginx(t *testing.T) {
	if _, err := exec.LookPath("nginx"); err != nil {
		t.Skip("nginx not installed (bench/run.sh installs it)")
	}
	if _, err := os.Stat(luaModule); err != nil {
		t.Skip("nginx's Lua module not installed (bench/run.sh installs libnginx-mod-http-lua)")
	}
	c := clustertest.New(t, clustertest.Options{Domains: map[string]map[string]int{domain: {"one": 1}}})
	c.WaitWritable(t, 0, c.AllDevIDs()...)
	web := httptest.NewServer(c.Tracker(0).HTTPHandler())
	t.Cleanup(web.Close)
	bodies := map[string][]byte{"k": []byte("four bytes and more"), "dir/a b": []byte("spaced key")}
	for key, b := range bodies {
		c.Upload(t, domain, key, "one", b)
	}
	var nodes []string
	for i := range 2 {
		addr, _ := c.Node(i)
		nodes = append(nodes, addr)
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	dir := t.TempDir()
	conf, err := lookupNginxConf(dir, port, c.TrackerAddrs()[0], nodes)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	ng, err := start(dir, "nginx-lookup", serverCPUs, nil, "nginx", "-c", path, "-p", dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ng.stop) // the whole process group: nginx's workers too
	if err := waitPort(l.Addr().String(), 10*time.Second); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "nginx-error.log"))
		t.Fatalf("%v\n%s", err, log)
	}

	before, err := getPathsAnswered(web.Client(), web.URL+"/metrics")
	if err != nil {
		t.Fatal(err)
	}
	get := func(uri string) (int, []byte) {
		t.Helper()
		resp, err := http.Get("http://" + l.Addr().String() + uri)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, b
	}
	for range 2 {
		for uri, key := range map[string]string{"/bench/k": "k", "/bench/dir/a%20b": "dir/a b"} {
			if status, b := get(uri); status != http.StatusOK || !bytes.Equal(b, bodies[key]) {
				log, _ := os.ReadFile(filepath.Join(dir, "nginx-error.log"))
				t.Fatalf("GET %s = %d %q, want 200 %q\n%s", uri, status, b, bodies[key], log)
			}
		}
	}
	if status, _ := get("/bench/missing"); status != http.StatusNotFound {
		t.Errorf("GET of an unknown key = %d, want 404", status)
	}
	after, err := getPathsAnswered(web.Client(), web.URL+"/metrics")
	if err != nil {
		t.Fatal(err)
	}
	if got := after - before; got != 5 {
		t.Errorf("get_paths answered over 5 requests = %v, want 5 (one a request)", got)
	}
}

// TestAddresses: -hold prints, for each stored object, its URL on every side a row compares.
func TestAddresses(t *testing.T) {
	c := &cluster{gateways: map[int]*proc{}, objects: map[string]object{
		"4k": {key: "4k", size: 4096, path: "/dev1/0/000/000/0000000001.fid"},
	}}
	var b strings.Builder
	c.addresses(&b)
	for _, want := range []string{
		"http://127.0.0.2:17500/dev1/0/000/000/0000000001.fid", // the storage node
		"http://127.0.0.1:18091/dev1/0/000/000/0000000001.fid", // nginx static
		"http://127.0.0.1:18081/bench/4k",                      // the tracker route
		"http://127.0.0.1:18082/dev1/0/000/000/0000000001.fid", // the upstream route
		"http://127.0.0.1:18092/dev1/0/000/000/0000000001.fid", // nginx proxy_pass
		"http://127.0.0.1:18103/bench/4k",                      // nginx asking the tracker
		"127.0.0.1:17001",                                      // the tracker
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("addresses lacks %s:\n%s", want, b.String())
		}
	}
}
