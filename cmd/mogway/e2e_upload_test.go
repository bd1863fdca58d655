package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mogway/mogway/internal/testutil"
)

// Issue 9: uploads stream end to end in bounded memory. These tests run the real `mogway` binary
// (a tracker, storage nodes, a gateway, the upload CLI) as separate processes, so that the kernel's
// account of each process's peak memory (VmHWM, or ru_maxrss for a process that exited) measures
// exactly what one deployment would use.

// peakRSSBound is the most resident memory a process may have reached while uploading 256 MiB
// bodies. An idle process holds about 13 MiB; one that held a body would exceed 256 MiB.
const peakRSSBound = 64 << 20

// bigBody is the size of each large upload.
const bigBody = 256 << 20

var (
	binOnce sync.Once
	binDir  string // holds the binary built for this test run; removed by TestMain
	binPath string
	binErr  error
)

// TestMain runs the test binary as mogway itself when asMainEnv is set (startProcess), and removes
// the binary mogwayBinary built when the tests end.
func TestMain(m *testing.M) {
	if os.Getenv(asMainEnv) == "1" {
		os.Exit(run(context.Background(), &env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr}, os.Args[1:]))
	}
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// mogwayBinary builds cmd/mogway once per test run and returns the binary's path.
func mogwayBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		if binDir, binErr = os.MkdirTemp("", "mogway-e2e-"); binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "mogway")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// realProc is `mogway args...` running as its own process.
type realProc struct {
	name string
	cmd  *exec.Cmd
	out  *syncBuffer // stdout and stderr
	done chan struct{}
}

// startReal starts `mogway args...` as a process. It is stopped with SIGTERM at cleanup if it still
// runs, and killed if it does not stop within waitTimeout.
func startReal(t *testing.T, args ...string) *realProc {
	t.Helper()
	return startCmd(t, exec.Command(mogwayBinary(t), args...), strings.Join(args, " "))
}

// startCmd starts cmd, a mogway process named name in failures, as startReal does.
func startCmd(t *testing.T, cmd *exec.Cmd, name string) *realProc {
	t.Helper()
	p := &realProc{name: name, cmd: cmd, out: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		t.Fatalf("mogway %s: %v", p.name, err)
	}
	go func() {
		cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		if p.exited() {
			return
		}
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(waitTimeout):
			cmd.Process.Kill()
			<-p.done
			t.Errorf("mogway %s did not stop within %v of SIGTERM; log:\n%s", p.name, waitTimeout, p.out.String())
		}
	})
	return p
}

func (p *realProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// kill ends the process with SIGKILL, as a crash would, and waits for it.
func (p *realProc) kill() {
	p.cmd.Process.Kill()
	<-p.done
}

// waitLog polls the process's output until re matches and returns the submatches; ok is false when
// the process exited first.
func (p *realProc) waitLog(t *testing.T, re *regexp.Regexp) (m []string, ok bool) {
	t.Helper()
	m, exited := waitOutput(t, p.name, re, p.out.String, p.exited)
	return m, !exited
}

// mustLog is waitLog for a process that must not exit.
func (p *realProc) mustLog(t *testing.T, re *regexp.Regexp) []string {
	t.Helper()
	m, ok := p.waitLog(t, re)
	if !ok {
		t.Fatalf("mogway %s exited before logging %q; log:\n%s", p.name, re, p.out.String())
	}
	return m
}

// peakRSS returns the most resident memory the running process has used so far (VmHWM).
func (p *realProc) peakRSS(t *testing.T) int64 {
	t.Helper()
	n, err := readVmHWM(p.cmd.Process.Pid)
	if err != nil {
		t.Skipf("cannot measure memory: %v", err)
	}
	return n
}

// peakRSSUntilExit polls the process's VmHWM until it exits and returns the last value read: the
// peak of its whole run, but for what it may have allocated within its last poll interval. (The
// kernel's ru_maxrss of the exited process would be exact, but a child started by os/exec shares
// the test process's memory until it execs, and Linux keeps that high-water mark across exec.)
func (p *realProc) peakRSSUntilExit(t *testing.T) int64 {
	t.Helper()
	var peak int64
	for {
		if n, err := readVmHWM(p.cmd.Process.Pid); err == nil {
			peak = n
		}
		select {
		case <-p.done:
			if peak == 0 {
				t.Skip("cannot measure memory: no VmHWM read while the process ran")
			}
			return peak
		case <-time.After(pollInterval): // polling interval, not synchronisation
		}
	}
}

var vmHWMRE = regexp.MustCompile(`(?m)^VmHWM:\s+(\d+) kB$`)

// readVmHWM returns the peak resident memory of process pid so far, from /proc.
func readVmHWM(pid int) (int64, error) {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	m := vmHWMRE.FindSubmatch(status)
	if m == nil {
		return 0, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
	}
	kb, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return kb << 10, nil
}

// realCluster is a tracker and two storage nodes running as processes, registered with a domain
// "photos" whose class "single" keeps one copy (so that nothing replicates while memory is measured).
type realCluster struct {
	trackerAddr string
	nodes       [2]*e2eNode
	procs       [2]*realProc // the nodes' processes, by index
}

// startRealCluster starts a cluster with its storage nodes on ips. The nodes' side channels share a
// port number, as in startE2ENodes.
func startRealCluster(t *testing.T, ips [2]string) *realCluster {
	t.Helper()
	c := &realCluster{}
	var mgmtPort string
	for attempt := 1; ; attempt++ {
		for i, ip := range ips {
			root := filepath.Join(t.TempDir(), fmt.Sprintf("node%d", i+1))
			if err := os.MkdirAll(filepath.Join(root, fmt.Sprintf("dev%d", i+1)), 0o755); err != nil {
				t.Fatal(err)
			}
			c.nodes[i] = &e2eNode{name: fmt.Sprintf("store%d", i+1), devid: i + 1, ip: ip, docroot: root}
		}
		n0 := c.nodes[0]
		c.procs[0] = startReal(t, "storaged", "--listen", n0.ip+":0", "--mgmt-listen", n0.ip+":0", "--docroot", n0.docroot)
		m := c.procs[0].mustLog(t, storagedServingRE)
		n0.http, n0.mgmt = m[1], m[2]
		_, mgmtPort, _ = net.SplitHostPort(m[2])
		n1 := c.nodes[1]
		c.procs[1] = startReal(t, "storaged", "--listen", n1.ip+":0", "--mgmt-listen", net.JoinHostPort(n1.ip, mgmtPort), "--docroot", n1.docroot)
		if m, ok := c.procs[1].waitLog(t, storagedServingRE); ok {
			n1.http, n1.mgmt = m[1], m[2]
			break
		}
		if attempt == 3 || !strings.Contains(c.procs[1].out.String(), "address already in use") {
			t.Fatalf("storaged on %s exited; log:\n%s", n1.ip, c.procs[1].out.String())
		}
		c.procs[0].kill()
	}
	cfg := writeConfig(t, `tracker:
  side_channel_port: `+mgmtPort+`
  workers:
    monitor_interval: 100ms
    write_probe_interval: 200ms
    usage_update_interval: 200ms
`)
	tr := startReal(t, "tracker", "-c", cfg, "--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--db", "sqlite:"+filepath.Join(t.TempDir(), "t.db"))
	c.trackerAddr = tr.mustLog(t, trackerStartingRE)[1]
	registerE2ENodes(t, c.trackerAddr, c.nodes)
	mustMog(t, "adm", "--trackers="+c.trackerAddr, "class", "add", "photos", "single", "--mindevcount=1")
	return c
}

// startRealGateway starts `mogway gateway` in front of c with a PUT route /photos/ to class single.
func startRealGateway(t *testing.T, c *realCluster, ip string) (*realProc, string) {
	t.Helper()
	cfg := writeConfig(t, `gateway:
  access_log: "off"
  routes:
    - prefix: /photos/
      domain: photos
      class: single
      methods: [GET, HEAD, PUT]
      allow: [127.0.0.0/8]
`)
	gw := startReal(t, "gateway", "-c", cfg, "--listen", ip+":0", "--trackers", c.trackerAddr)
	base := "http://" + gw.mustLog(t, gatewayListeningRE)[1]
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("gateway log:\n%s", gw.out.String())
		}
	})
	return gw, base
}

// testBody returns size deterministic bytes for seed, generated as they are read (never held).
func testBody(seed uint64, size int64) io.Reader {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	return io.LimitReader(rand.NewChaCha8(s), size)
}

// testBodySum is the SHA-256 of testBody(seed, size).
func testBodySum(t *testing.T, seed uint64, size int64) [32]byte {
	t.Helper()
	h := sha256.New()
	io.Copy(h, testBody(seed, size))
	return [32]byte(h.Sum(nil))
}

// streamPut sends size bytes of testBody(seed) with PUT and returns the status and answer.
func streamPut(url string, seed uint64, size int64) (int, string, error) {
	req, err := http.NewRequest("PUT", url, testBody(seed, size))
	if err != nil {
		return 0, "", err
	}
	req.ContentLength = size
	resp, err := (&http.Client{Timeout: 5 * waitTimeout}).Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, string(b), nil
}

// fetchSum GETs url and returns the status and the SHA-256 and length of the body, read as it streams.
func fetchSum(t *testing.T, url string) (int, [32]byte, int64) {
	t.Helper()
	resp, err := (&http.Client{Timeout: 5 * waitTimeout}).Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	h := sha256.New()
	n, err := io.Copy(h, resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading the body: %v", url, err)
	}
	return resp.StatusCode, [32]byte(h.Sum(nil)), n
}

// TestE2EUploadGatewayPeakRSS: four concurrent 256 MiB PUTs through `mogway gateway` leave its peak
// RSS far below one body (it read each body whole before the fix: 540 MiB for one 200 MiB PUT), and
// every byte arrives.
func TestE2EUploadGatewayPeakRSS(t *testing.T) {
	// Not parallel: it moves hundreds of MiB through the test process, which would starve the
	// other end-to-end tests' in-process CLI calls of CPU on a small machine.
	c := startRealCluster(t, [2]string{"127.0.0.91", "127.0.0.92"})
	gw, base := startRealGateway(t, c, "127.0.0.91")
	const uploads = 4
	var wg sync.WaitGroup
	errs := make([]string, uploads)
	for i := range uploads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, body, err := streamPut(fmt.Sprintf("%s/photos/big%d", base, i), uint64(i), bigBody)
			if err != nil || code != 201 {
				errs[i] = fmt.Sprintf("PUT big%d = %d %q, %v; want 201", i, code, body, err)
			}
		}()
	}
	wg.Wait()
	for _, e := range errs {
		if e != "" {
			t.Error(e)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	peak := gw.peakRSS(t)
	t.Logf("gateway peak RSS after %d concurrent %d MiB uploads: %.1f MiB", uploads, bigBody>>20, float64(peak)/(1<<20))
	if peak > peakRSSBound {
		t.Errorf("gateway VmHWM = %d MiB, want at most %d MiB", peak>>20, peakRSSBound>>20)
	}
	for i := range uploads {
		code, sum, n := fetchSum(t, fmt.Sprintf("%s/photos/big%d", base, i))
		if code != 200 || n != bigBody || sum != testBodySum(t, uint64(i), bigBody) {
			t.Errorf("GET big%d = %d with %d bytes (sha256 %x), want 200 with the %d bytes uploaded", i, code, n, sum[:8], bigBody)
		}
	}
}

// TestE2EStoragedPutPeakRSS: one 256 MiB PUT straight to `mogway storaged` streams to disk.
func TestE2EStoragedPutPeakRSS(t *testing.T) {
	// Not parallel: it moves hundreds of MiB through the test process, which would starve the
	// other end-to-end tests' in-process CLI calls of CPU on a small machine.
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "dev1"), 0o755); err != nil {
		t.Fatal(err)
	}
	node := startReal(t, "storaged", "--listen", "127.0.0.97:0", "--mgmt-listen", "127.0.0.97:0", "--docroot", root)
	addr := node.mustLog(t, storagedServingRE)[1]
	const path = "/dev1/0/000/000/0000000001.fid"
	if code, body, err := streamPut("http://"+addr+path, 7, bigBody); err != nil || code/100 != 2 {
		t.Fatalf("PUT %s = %d %q, %v; want 2xx", path, code, body, err)
	}
	peak := node.peakRSS(t)
	t.Logf("storaged peak RSS after a %d MiB PUT: %.1f MiB", bigBody>>20, float64(peak)/(1<<20))
	if peak > peakRSSBound {
		t.Errorf("storaged VmHWM = %d MiB, want at most %d MiB", peak>>20, peakRSSBound>>20)
	}
	f, err := os.Open(filepath.Join(root, filepath.FromSlash(path)))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if n, err := io.Copy(h, f); err != nil || n != bigBody || [32]byte(h.Sum(nil)) != testBodySum(t, 7, bigBody) {
		t.Errorf("stored file: %d bytes, %v; want the %d bytes sent", n, err, bigBody)
	}
}

// TestE2EUploadCLIPeakRSS: `mogway upload` of a 256 MiB file streams it to the storage node.
func TestE2EUploadCLIPeakRSS(t *testing.T) {
	// Not parallel: it moves hundreds of MiB through the test process, which would starve the
	// other end-to-end tests' in-process CLI calls of CPU on a small machine.
	c := startRealCluster(t, [2]string{"127.0.0.98", "127.0.0.99"})
	src := filepath.Join(t.TempDir(), "big.bin")
	f, err := os.Create(src)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(f, testBody(9, bigBody)); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	up := startReal(t, "upload", "--trackers="+c.trackerAddr, "--domain=photos", "--class=single",
		"--key=cli/big.bin", "--file="+src)
	peak := up.peakRSSUntilExit(t)
	if code := up.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("mogway upload = exit %d, want 0; output:\n%s", code, up.out.String())
	}
	t.Logf("mogway upload peak RSS for a %d MiB file: %.1f MiB", bigBody>>20, float64(peak)/(1<<20))
	if peak > peakRSSBound {
		t.Errorf("mogway upload VmHWM = %d MiB, want at most %d MiB", peak>>20, peakRSSBound>>20)
	}
	r := mustMog(t, "info", "--trackers="+c.trackerAddr, "--domain=photos", "--key=cli/big.bin")
	urls := copyURLs(r.stdout)
	if len(urls) != 1 {
		t.Fatalf("info lists %q, want one copy", urls)
	}
	code, sum, n := fetchSum(t, urls[0])
	if code != 200 || n != bigBody || sum != testBodySum(t, 9, bigBody) {
		t.Errorf("GET %s = %d with %d bytes, want 200 with the %d bytes of the file", urls[0], code, n, bigBody)
	}
}

// throttledPut is a client that sends a PUT's head and body in steps chosen by the test, on a raw
// connection, and reads the answer whenever it comes (even while it still sends).
type throttledPut struct {
	conn net.Conn
	body io.Reader
	resp chan *http.Response // the answer, or nil when none could be read
}

func startThrottledPut(t *testing.T, base, path string, seed uint64, size int64) *throttledPut {
	t.Helper()
	conn := testutil.Dial(t, strings.TrimPrefix(base, "http://"))
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(5 * waitTimeout))
	p := &throttledPut{conn: conn, body: testBody(seed, size), resp: make(chan *http.Response, 1)}
	if _, err := fmt.Fprintf(conn, "PUT %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", path, size); err != nil {
		t.Fatal(err)
	}
	go func() {
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			p.resp <- nil
			return
		}
		io.Copy(io.Discard, resp.Body)
		p.resp <- resp
	}()
	return p
}

// send writes the next n bytes of the body; after the gateway closed the connection writes fail,
// which send ignores (the answer tells what happened).
func (p *throttledPut) send(n int64) {
	io.Copy(p.conn, io.LimitReader(p.body, n))
}

// answer returns the status code the gateway answered.
func (p *throttledPut) answer(t *testing.T) int {
	t.Helper()
	resp := <-p.resp
	if resp == nil {
		t.Fatal("no answer from the gateway")
	}
	return resp.StatusCode
}

// waitTempFile waits until a temp file of at least n bytes exists under one of the docroots, and
// returns the index of that node.
func waitTempFile(t *testing.T, c *realCluster, n int64) int {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		for i, node := range c.nodes {
			found := false
			filepath.WalkDir(node.docroot, func(path string, d fs.DirEntry, err error) error {
				if err == nil && strings.Contains(d.Name(), ".fid.") && strings.HasSuffix(d.Name(), ".tmp") {
					if fi, err := d.Info(); err == nil && fi.Size() >= n {
						found = true
					}
				}
				return nil
			})
			if found {
				return i
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no storage node holds a temp file of %d bytes after %v", n, waitTimeout)
		}
		time.Sleep(pollInterval) // polling interval, not synchronisation
	}
}

// putKillingNode starts a cluster and a gateway on ips and PUTs size bytes of testBody(seed) to
// path, pausing half-way until the half is in a storage node's temp file (less what the gateway may
// hold: fasthttp's first read of the body and one write buffer), which proves that the body streams;
// before the fix nothing reached a node until the client's last byte. It then kills that node, sends
// the rest, and returns the cluster, the killed node's index and the gateway's answer.
func putKillingNode(t *testing.T, ips [2]string, path string, seed uint64, size int64) (c *realCluster, victim, code int) {
	t.Helper()
	c = startRealCluster(t, ips)
	_, base := startRealGateway(t, c, ips[0])
	p := startThrottledPut(t, base, path, seed, size)
	p.send(size / 2)
	victim = waitTempFile(t, c, size/2-128<<10)
	c.procs[victim].kill()
	p.send(size - size/2)
	return c, victim, p.answer(t)
}

// TestE2EUploadNodeKilledMidBody: the storage node receiving a 32 MiB PUT is killed mid-body. The
// body is past the replay buffer, so the client gets 502 and the key is never created (no
// create_close).
func TestE2EUploadNodeKilledMidBody(t *testing.T) {
	t.Parallel()
	c, victim, code := putKillingNode(t, [2]string{"127.0.0.93", "127.0.0.94"}, "/photos/mid/cut.bin", 3, 32<<20)
	if code != 502 {
		t.Errorf("PUT with its storage node killed mid-body = %d, want 502", code)
	}
	if reply := trackerCommand(t, c.trackerAddr, "get_paths domain=photos&key=mid/cut.bin"); !strings.HasPrefix(reply, "ERR unknown_key") {
		t.Errorf("get_paths after the failed upload = %q, want ERR unknown_key", reply)
	}
	if r := mog(t, "", "info", "--trackers="+c.trackerAddr, "--domain=photos", "--key=mid/cut.bin"); r.code == 0 {
		t.Errorf("%v\nwant a failure: the key must not exist", r)
	}
	// The node that lived holds no copy either.
	other := c.nodes[1-victim]
	filepath.WalkDir(other.docroot, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(d.Name(), ".fid") {
			t.Errorf("%s holds %s after the failed upload", other.name, path)
		}
		return nil
	})
}

// TestE2EUploadNodeKilledMidBodyReplayed: the same with a body within the replay buffer (1 MiB by
// default): the gateway sends it again to the other destination and the upload succeeds.
func TestE2EUploadNodeKilledMidBodyReplayed(t *testing.T) {
	t.Parallel()
	const size = 768 << 10
	c, victim, code := putKillingNode(t, [2]string{"127.0.0.95", "127.0.0.96"}, "/photos/mid/replayed.bin", 5, size)
	if code != 201 {
		t.Fatalf("PUT within the replay buffer with its storage node killed mid-body = %d, want 201", code)
	}
	r := mustMog(t, "info", "--trackers="+c.trackerAddr, "--domain=photos", "--key=mid/replayed.bin")
	urls := copyURLs(r.stdout)
	if len(urls) != 1 || !strings.Contains(urls[0], c.nodes[1-victim].http) {
		t.Fatalf("info lists %q, want one copy on %s", urls, c.nodes[1-victim].http)
	}
	code, sum, n := fetchSum(t, urls[0])
	if code != 200 || n != size || sum != testBodySum(t, 5, size) {
		t.Errorf("GET %s = %d with %d bytes, want 200 with the %d bytes sent", urls[0], code, n, size)
	}
}
