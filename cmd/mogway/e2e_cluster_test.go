package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mogway/mogway/internal/clustertest"
)

// The acceptance story of docs/quickstart.md, run through the real subcommands: a tracker and two
// storage nodes, registered with `mogway adm`, files uploaded, replicated to both hosts, fetched,
// listed, fetched again with one node down, and deleted.

func TestE2ECluster(t *testing.T) {
	t.Parallel()
	onEachStore(t, [4]string{"127.0.0.51", "127.0.0.52", "127.0.0.53", "127.0.0.54"}, runClusterScenario)
}

// onEachStore runs scenario in two parallel subtests: "SQLite", on a new database file with storage
// nodes on ips[0] and ips[1], and "MariaDB", with storage nodes on ips[2] and ips[3] (skipped when
// MOGWAY_TEST_MYSQL_DSN is unset).
func onEachStore(t *testing.T, ips [4]string, scenario func(t *testing.T, db string, ips [2]string)) {
	t.Run("SQLite", func(t *testing.T) {
		t.Parallel()
		scenario(t, "sqlite:"+filepath.Join(t.TempDir(), "t.db"), [2]string{ips[0], ips[1]})
	})
	t.Run("MariaDB", func(t *testing.T) {
		t.Parallel()
		scenario(t, "mysql://"+clustertest.MySQLDSN(t), [2]string{ips[2], ips[3]})
	})
}

var (
	storagedServingRE = regexp.MustCompile(`msg="storage node serving" http=(\S+) mgmt=(\S+)`)
	trackerStartingRE = regexp.MustCompile(`msg="tracker starting" listen=(\S+)`)
)

// e2eNode is one `mogway storaged` of the scenario.
type e2eNode struct {
	d       *proc
	name    string // host name registered in the tracker
	devid   int
	ip      string
	http    string // host:port of the HTTP listener
	mgmt    string // host:port of the side channel
	docroot string
}

// restart starts a stopped node again on the same addresses and docroot, as after a reboot.
func (n *e2eNode) restart(t *testing.T) {
	t.Helper()
	n.d = startDaemon(t, "storaged", "--listen", n.http, "--mgmt-listen", n.mgmt, "--docroot", n.docroot)
	n.d.waitLog(t, storagedServingRE)
}

// startE2ENodes starts two storage nodes on ips, each with a device dev<i+1>. Their side channels
// listen on one port number, as the tracker's side_channel_port requires: the first node picks a
// free port and the second binds the same port on its own address. Should another process hold
// that port on the second address, both are started again.
func startE2ENodes(t *testing.T, ips [2]string) (nodes [2]*e2eNode, mgmtPort string) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		for i, ip := range ips {
			root := filepath.Join(t.TempDir(), fmt.Sprintf("node%d", i+1))
			if err := os.MkdirAll(filepath.Join(root, fmt.Sprintf("dev%d", i+1)), 0o755); err != nil {
				t.Fatal(err)
			}
			nodes[i] = &e2eNode{name: fmt.Sprintf("store%d", i+1), devid: i + 1, ip: ip, docroot: root}
		}
		n0 := nodes[0]
		n0.d = startDaemon(t, "storaged", "--listen", n0.ip+":0", "--mgmt-listen", n0.ip+":0", "--docroot", n0.docroot)
		m := n0.d.waitLog(t, storagedServingRE)
		n0.http, n0.mgmt = m[1], m[2]
		_, mgmtPort, err := net.SplitHostPort(m[2])
		if err != nil {
			t.Fatalf("storaged logged mgmt=%q: %v", m[2], err)
		}
		n1 := nodes[1]
		n1.d = startDaemon(t, "storaged", "--listen", n1.ip+":0", "--mgmt-listen", net.JoinHostPort(n1.ip, mgmtPort), "--docroot", n1.docroot)
		m, exited := n1.d.waitLogOrExit(t, storagedServingRE)
		if !exited {
			n1.http, n1.mgmt = m[1], m[2]
			return nodes, mgmtPort
		}
		if attempt == 3 || !strings.Contains(n1.d.stderr.String(), "address already in use") {
			t.Fatalf("storaged on %s exited with %d; log:\n%s", n1.ip, n1.d.code, n1.d.stderr.String())
		}
		if code := n0.d.stop(t); code != 0 {
			t.Fatalf("storaged on %s stopped with %d; log:\n%s", n0.ip, code, n0.d.stderr.String())
		}
	}
}

// startE2ETracker starts `mogway tracker` on db with a config file that points side_channel_port
// at the nodes' management port and shortens the worker intervals, and returns its address.
func startE2ETracker(t *testing.T, db, mgmtPort string) (*proc, string) {
	t.Helper()
	cfg := e2eTrackerConfig(t, mgmtPort, "")
	d := startDaemon(t, "tracker", "-c", cfg, "--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--db", db)
	addr := d.waitLog(t, trackerStartingRE)[1]
	if addr == "127.0.0.1:7001" {
		t.Errorf("the tracker listens on %s from the file; --listen should win", addr)
	}
	return d, addr
}

// e2eTrackerConfig writes the config file of startE2ETracker, with extra appended to its tracker
// section (indented by two spaces), and returns its path.
func e2eTrackerConfig(t *testing.T, mgmtPort, extra string) string {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "mogway.yaml")
	err := os.WriteFile(cfg, []byte(`tracker:
  listen: "127.0.0.1:7001"      # --listen below wins
  side_channel_port: `+mgmtPort+`
  workers:
    monitor_interval: 100ms
    write_probe_interval: 200ms
    usage_update_interval: 200ms
    poll_interval: 50ms
    reaper_interval: 100ms
    reap_delay: 500ms
`+extra), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// copyURLs returns the copy URLs `mogway info` printed.
func copyURLs(info string) []string {
	var urls []string
	for _, line := range strings.Split(info, "\n") {
		if u, ok := strings.CutPrefix(line, " - http://"); ok {
			urls = append(urls, "http://"+u)
		}
	}
	return urls
}

// urlHosts returns the host:port of each URL, sorted.
func urlHosts(t *testing.T, urls []string) []string {
	t.Helper()
	var hosts []string
	for _, s := range urls {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatalf("info printed an unparsable URL %q: %v", s, err)
		}
		hosts = append(hosts, u.Host)
	}
	slices.Sort(hosts)
	return hosts
}

// infoField returns the value of a "   name:   value" line of `mogway info`.
func infoField(info, name string) string {
	for _, line := range strings.Split(info, "\n") {
		if k, v, ok := strings.Cut(strings.TrimPrefix(strings.TrimSpace(line), "- "), ":"); ok && k == name {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// e2eCluster is a tracker and two storage nodes started through run, with the nodes, their
// devices, the domain "photos" and its two-copy class "originals" registered through `mogway adm`.
type e2eCluster struct {
	nodes       [2]*e2eNode
	mgmtPort    string
	db          string
	tracker     *proc
	trackerAddr string
}

// startSQLiteCluster is startE2ECluster on a new SQLite database in t.TempDir().
func startSQLiteCluster(t *testing.T, ips [2]string) *e2eCluster {
	t.Helper()
	return startE2ECluster(t, "sqlite:"+filepath.Join(t.TempDir(), "t.db"), ips)
}

// startE2ECluster starts and registers a cluster on db, with storage nodes on ips, and returns once
// `mogway adm check` passes with both devices writeable.
func startE2ECluster(t *testing.T, db string, ips [2]string) *e2eCluster {
	t.Helper()
	c := &e2eCluster{db: db}
	c.nodes, c.mgmtPort = startE2ENodes(t, ips)
	c.tracker, c.trackerAddr = startE2ETracker(t, db, c.mgmtPort)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("tracker log:\n%s", c.tracker.stderr.String())
		}
	})
	registerE2ENodes(t, c.trackerAddr, c.nodes)
	return c
}

// registerE2ENodes registers nodes and their devices with the tracker at trackerAddr, adds the
// domain "photos" with its two-copy class "originals", and returns once `mogway adm check` passes
// with both devices writeable.
func registerE2ENodes(t *testing.T, trackerAddr string, nodes [2]*e2eNode) {
	t.Helper()
	tr := "--trackers=" + trackerAddr
	for _, n := range nodes {
		host, port, _ := net.SplitHostPort(n.http)
		if r := mustMog(t, "adm", tr, "host", "add", n.name, "--ip="+host, "--port="+port, "--status=alive"); r.stdout != "" {
			t.Errorf("%v\nwant no output (like mogadm)", r)
		}
		mustMog(t, "adm", tr, "device", "add", n.name, fmt.Sprint(n.devid))
	}
	mustMog(t, "adm", tr, "domain", "add", "photos")
	mustMog(t, "adm", tr, "class", "add", "photos", "originals", "--mindevcount=2")
	classes := mustMog(t, "adm", tr, "class", "list")
	if !regexp.MustCompile(`(?m)^ photos +originals +2 +MultipleHosts\(\) +NONE *$`).MatchString(classes.stdout) {
		t.Errorf("%v\nwant a line for photos/originals with mindevcount 2", classes)
	}
	hosts := mustMog(t, "adm", tr, "host", "list")
	for _, n := range nodes {
		if !strings.Contains(hosts.stdout, n.name) || !strings.Contains(hosts.stdout, n.http) {
			t.Errorf("%v\nwant host %s at %s", hosts, n.name, n.http)
		}
	}
	// The monitor finds both devices writeable within a few rounds.
	writeable := regexp.MustCompile(`(?m)^  \[ *\d+\] dev\d+ .* writeable `)
	check := pollMog(t, "adm check to pass with both devices writeable", func(r cliResult) bool {
		return r.code == 0 && len(writeable.FindAllString(r.stdout, -1)) == 2
	}, "adm", tr, "check")
	if !strings.Contains(check.stdout, trackerAddr+" ... OK") {
		t.Errorf("%v\nwant the tracker %s OK", check, trackerAddr)
	}
}

func runClusterScenario(t *testing.T, db string, ips [2]string) {
	c := startE2ECluster(t, db, ips)
	nodes, mgmtPort, tracker, trackerAddr := c.nodes, c.mgmtPort, c.tracker, c.trackerAddr
	tr := "--trackers=" + trackerAddr
	dir := t.TempDir()

	// Upload a file of a few MiB and a small one from stdin.
	rng := rand.New(rand.NewPCG(1, 2))
	body := make([]byte, 3<<20+7)
	for i := range body {
		body[i] = byte(rng.UintN(256))
	}
	src := filepath.Join(dir, "beach.jpg")
	if err := os.WriteFile(src, body, 0o644); err != nil {
		t.Fatal(err)
	}
	const key = "albums/2024/beach.jpg"
	if r := mustMog(t, "upload", tr, "--domain=photos", "--class=originals", "--key="+key, "--file="+src); r.stdout != "" {
		t.Errorf("%v\nwant no output", r)
	}
	if r := mog(t, "hello, mogway\n", "upload", tr, "--domain=photos", "--key=notes/hello.txt"); r.code != 0 {
		t.Fatalf("%v\nwant exit 0", r)
	}

	// Replication puts a copy on each host.
	wantHosts := []string{nodes[0].http, nodes[1].http}
	slices.Sort(wantHosts)
	// file_info reads the file row and its copies apart, so devcount may lag devids for a moment.
	info := pollMog(t, "info to show two copies on distinct hosts", func(r cliResult) bool {
		return r.code == 0 && slices.Equal(urlHosts(t, copyURLs(r.stdout)), wantHosts) &&
			infoField(r.stdout, "devcount") == "2"
	}, "info", tr, "--domain=photos", "--key="+key)
	for name, want := range map[string]string{
		"file": key, "key": key, "domain": "photos", "class": "originals",
		"length": fmt.Sprint(len(body)), "devcount": "2", "devids": "1,2",
	} {
		if got := infoField(info.stdout, name); got != want {
			t.Errorf("info field %s = %q, want %q\n%v", name, got, want, info)
		}
	}

	// Fetch to a file and to stdout: the same bytes.
	dst := filepath.Join(dir, "fetched.jpg")
	mustMog(t, "fetch", tr, "--domain=photos", "--key="+key, "--file="+dst)
	if got, err := os.ReadFile(dst); err != nil || !bytes.Equal(got, body) {
		t.Fatalf("fetch --file: %d bytes (err %v) differ from the %d bytes uploaded", len(got), err, len(body))
	}
	if r := mustMog(t, "fetch", tr, "--domain=photos", "--key=notes/hello.txt"); r.stdout != "hello, mogway\n" {
		t.Errorf("fetch to stdout = %q, want %q", r.stdout, "hello, mogway\n")
	}
	if r := mustMog(t, "ls", tr, "--domain=photos"); r.stdout != key+"\nnotes/hello.txt\n" {
		t.Errorf("ls = %q, want %q", r.stdout, key+"\nnotes/hello.txt\n")
	}
	if r := mustMog(t, "ls", tr, "--domain=photos", "--key_prefix=albums/"); r.stdout != key+"\n" {
		t.Errorf("ls --key_prefix=albums/ = %q, want %q", r.stdout, key+"\n")
	}

	// Stop the node that holds the first copy listed, so fetch must fail over to the other.
	first, _ := url.Parse(copyURLs(info.stdout)[0])
	var down, up *e2eNode
	for _, n := range nodes {
		if n.http == first.Host {
			down = n
		} else {
			up = n
		}
	}
	if code := down.d.stop(t); code != 0 {
		t.Fatalf("storaged %s stopped with exit %d, want 0; log:\n%s", down.name, code, down.d.stderr.String())
	}
	dst2 := filepath.Join(dir, "fetched-after-kill.jpg")
	if r := mog(t, "", "fetch", tr, "--domain=photos", "--key="+key, "--file="+dst2); r.code != 0 {
		t.Fatalf("with %s down: %v\nwant exit 0", down.name, r)
	}
	if got, err := os.ReadFile(dst2); err != nil || !bytes.Equal(got, body) {
		t.Fatalf("fetch with %s down: %d bytes (err %v) differ from the %d bytes uploaded", down.name, len(got), err, len(body))
	}
	if r := mog(t, "", "adm", tr, "check"); r.code != 1 || !strings.Contains(r.stdout, down.name+" ... REQUEST FAILURE") {
		t.Errorf("with %s down: %v\nwant exit 1 and %q", down.name, r, down.name+" ... REQUEST FAILURE")
	}

	// An upload while the node is down fails over to the live node. When the node comes back,
	// replication gives the file its second copy; replicate_now (what an operator would send)
	// brings forward retries that were deferred while no second host was writeable.
	storm := bytes.Repeat([]byte("storm over the bay "), 40000)
	stormSrc := filepath.Join(t.TempDir(), "storm.jpg")
	if err := os.WriteFile(stormSrc, storm, 0o644); err != nil {
		t.Fatal(err)
	}
	const stormKey = "albums/2024/storm.jpg"
	if r := mog(t, "", "upload", tr, "--domain=photos", "--class=originals", "--key="+stormKey, "--file="+stormSrc); r.code != 0 {
		t.Fatalf("with %s down: %v\nwant exit 0", down.name, r)
	}
	down.restart(t)
	pollMog(t, "the file uploaded during the outage to get its second copy", func(r cliResult) bool {
		if r.code == 0 && slices.Equal(urlHosts(t, copyURLs(r.stdout)), wantHosts) && infoField(r.stdout, "devcount") == "2" {
			return true
		}
		trackerCommand(t, trackerAddr, "replicate_now")
		return false
	}, "info", tr, "--domain=photos", "--key="+stormKey)

	// Delete: the key is gone at once, and the copy on the live node is deleted in the background.
	var upCopy string
	for _, s := range copyURLs(info.stdout) {
		if u, _ := url.Parse(s); u.Host == up.http {
			upCopy = filepath.Join(up.docroot, filepath.FromSlash(u.Path))
		}
	}
	if _, err := os.Stat(upCopy); err != nil {
		t.Fatalf("the copy on %s is not on disk: %v", up.name, err)
	}
	mustMog(t, "rm", tr, "--domain=photos", "--key="+key)
	dst3 := filepath.Join(dir, "fetched-after-rm.jpg")
	r := mog(t, "", "fetch", tr, "--domain=photos", "--key="+key, "--file="+dst3)
	if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, "mogway fetch: fetch "+key+": unknown_key") {
		t.Errorf("after rm: %v\nwant exit 1 and \"mogway fetch: fetch %s: unknown_key\" on stderr", r, key)
	}
	if _, err := os.Stat(dst3); !os.IsNotExist(err) {
		t.Errorf("a failed fetch left %s (stat: %v)", dst3, err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 3 {
		t.Errorf("after a failed fetch %s holds %d entries, want 3 (no temporary file left)", dir, len(entries))
	}
	if r := mog(t, "", "info", tr, "--domain=photos", "--key="+key); r.code != 1 || !strings.Contains(r.stderr, "unknown_key") {
		t.Errorf("after rm: %v\nwant exit 1 and unknown_key", r)
	}
	if r := mustMog(t, "ls", tr, "--domain=photos"); r.stdout != stormKey+"\nnotes/hello.txt\n" {
		t.Errorf("ls after rm = %q, want %q", r.stdout, stormKey+"\nnotes/hello.txt\n")
	}
	waitGone(t, upCopy)

	// A tracker restarted on the same database knows every file.
	if code := tracker.stop(t); code != 0 {
		t.Errorf("tracker stopped with exit %d, want 0; log:\n%s", code, tracker.stderr.String())
	}
	tracker, trackerAddr = startE2ETracker(t, db, mgmtPort)
	c.tracker = tracker
	tr = "--trackers=" + trackerAddr
	if r := mustMog(t, "ls", tr, "--domain=photos"); r.stdout != stormKey+"\nnotes/hello.txt\n" {
		t.Errorf("ls after a tracker restart = %q, want %q", r.stdout, stormKey+"\nnotes/hello.txt\n")
	}
	if r := mustMog(t, "fetch", tr, "--domain=photos", "--key="+stormKey); r.stdout != string(storm) {
		t.Errorf("fetch after a tracker restart: %d bytes differ from the %d bytes uploaded", len(r.stdout), len(storm))
	}
	if code := tracker.stop(t); code != 0 {
		t.Errorf("tracker stopped with exit %d, want 0; log:\n%s", code, tracker.stderr.String())
	}
}

// trackerCommand sends one raw request line to a tracker and returns the reply line.
func trackerCommand(t *testing.T, addr, line string) string {
	t.Helper()
	c, r := sendTrackerLine(t, addr, line)
	defer c.Close()
	reply, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("%s to %s: %v", line, addr, err)
	}
	return reply
}

// sendTrackerLine connects to the tracker at addr, bounded by waitTimeout, and sends line; the
// caller reads the reply from the reader and closes the connection.
func sendTrackerLine(t *testing.T, addr, line string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, waitTimeout)
	if err != nil {
		t.Fatalf("dial tracker %s: %v", addr, err)
	}
	c.SetDeadline(time.Now().Add(waitTimeout))
	if _, err := io.WriteString(c, line+"\r\n"); err != nil {
		c.Close()
		t.Fatalf("%s to %s: %v", line, addr, err)
	}
	return c, bufio.NewReader(c)
}

// waitGone polls until path no longer exists.
func waitGone(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		_, err := os.Stat(path)
		if os.IsNotExist(err) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still exists %v after the key was deleted (stat: %v)", path, waitTimeout, err)
		}
		time.Sleep(pollInterval * 5) // polling interval, not synchronisation
	}
}
