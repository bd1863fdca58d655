package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mogway/mogway/internal/testutil"
)

// Resource claims checked on the real process, as the project rule asks: the peak RSS of a gateway
// streaming a large download, and the file descriptors of client connections coming back.
// (A 256 MiB PUT to storaged is asserted by TestE2EStoragedPutPeakRSS, uploads through the
// gateway by TestE2EUploadGatewayPeakRSS.)

// TestE2EDownloadGatewayPeakRSS: a 256 MiB GET through `mogway gateway` streams. docs/gateway.md
// states no bound for downloads, only that bodies above 64 KiB stream; this uses the uploads' bound
// (peakRSSBound, 64 MiB), far below the body. The gateway that serves the GET is not the one that
// took the PUT, so its VmHWM measures the download alone.
func TestE2EDownloadGatewayPeakRSS(t *testing.T) {
	// Not parallel: it moves hundreds of MiB through the test process, like the upload tests.
	c := startRealCluster(t, [2]string{"127.0.0.101", "127.0.0.102"})
	_, putBase := startRealGateway(t, c, "127.0.0.101")
	const seed = 11
	if code, body, err := streamPut(putBase+"/photos/down/big.bin", seed, bigBody); err != nil || code != 201 {
		t.Fatalf("PUT /photos/down/big.bin = %d %q, %v; want 201", code, body, err)
	}
	gw, base := startRealGateway(t, c, "127.0.0.101")
	before := gw.peakRSS(t)
	code, sum, n := fetchSum(t, base+"/photos/down/big.bin")
	if code != 200 || n != bigBody || sum != testBodySum(t, seed, bigBody) {
		t.Errorf("GET /photos/down/big.bin = %d with %d bytes (sha256 %x), want 200 with the %d bytes uploaded", code, n, sum[:8], bigBody)
	}
	peak := gw.peakRSS(t)
	t.Logf("gateway peak RSS: %.1f MiB before, %.1f MiB after a %d MiB download", float64(before)/(1<<20), float64(peak)/(1<<20), bigBody>>20)
	if peak > peakRSSBound {
		t.Errorf("gateway VmHWM = %d MiB, want at most %d MiB", peak>>20, peakRSSBound>>20)
	}
}

// keepAliveConns is how many client connections the descriptor tests hold open at once.
const keepAliveConns = 200

// fdSlack is how far above its count before the connections a process's open descriptors may stay
// once they are closed: room for an upstream connection or a log file opened meanwhile, far below
// keepAliveConns.
const fdSlack = 4

// openFDs returns how many file descriptors process p has open, from /proc/PID/fd.
func (p *realProc) openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", p.cmd.Process.Pid))
	if err != nil {
		t.Skipf("cannot count file descriptors: %v", err)
	}
	return len(ents)
}

// checkFDsReleased opens keepAliveConns connections to addr, served by process p (named who in
// messages), and sends two GETs of path on each (keep-alive; one request at a time, so that the
// server needs one upstream connection at most). It checks that p's descriptor count rose by about
// one per connection while they are open, closes them, and waits until the count is back within
// fdSlack of what it was before.
func checkFDsReleased(t *testing.T, who string, p *realProc, addr, path string) {
	t.Helper()
	get := func(conn net.Conn, br *bufio.Reader) error {
		if _, err := fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path); err != nil {
			return err
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Close {
			return fmt.Errorf("answer %d (close %v), want 200 on a kept-alive connection", resp.StatusCode, resp.Close)
		}
		return nil
	}
	// The PUT that stored path left a kept-alive connection in the shared transport's pool, which
	// the server would count until the idle timeout; closing it makes the baseline exact.
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	// Warm up: the server's upstream pools and lazily opened files exist before the count is taken.
	warm := testutil.Dial(t, addr)
	if err := get(warm, bufio.NewReader(warm)); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	warm.Close()
	before := p.openFDs(t)

	conns := make([]net.Conn, keepAliveConns)
	readers := make([]*bufio.Reader, keepAliveConns)
	for i := range conns {
		conns[i] = testutil.Dial(t, addr)
		t.Cleanup(func() { conns[i].Close() })
		conns[i].SetDeadline(time.Now().Add(waitTimeout))
		readers[i] = bufio.NewReader(conns[i])
	}
	for round := range 2 {
		for i, conn := range conns {
			if err := get(conn, readers[i]); err != nil {
				t.Fatalf("connection %d, request %d: GET %s: %v", i, round+1, path, err)
			}
		}
	}
	open := p.openFDs(t)
	t.Logf("%s: %d descriptors before, %d with %d connections open", who, before, open, keepAliveConns)
	if open < before+keepAliveConns*3/4 {
		t.Errorf("%s holds %d descriptors with %d connections open, want at least %d: the count does not see them",
			who, open, keepAliveConns, before+keepAliveConns*3/4)
	}
	for _, conn := range conns {
		conn.Close()
	}
	after := waitFDs(t, p, func(n int) bool { return n <= before+fdSlack })
	t.Logf("%s: %d descriptors after closing them", who, after)
	if after > before+fdSlack {
		t.Errorf("%s holds %d descriptors %v after its %d connections closed, want at most %d (%d before)",
			who, after, waitTimeout, keepAliveConns, before+fdSlack, before)
	}
}

// waitFDs polls p's descriptor count until ok accepts it or waitTimeout passes, and returns the
// last count read.
func waitFDs(t *testing.T, p *realProc, ok func(int) bool) int {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		n := p.openFDs(t)
		if ok(n) || time.Now().After(deadline) {
			return n
		}
		time.Sleep(pollInterval) // polling interval, not synchronisation
	}
}

// TestE2EGatewayReleasesClientFDs: a real gateway closes the descriptors of keep-alive clients that
// went away.
func TestE2EGatewayReleasesClientFDs(t *testing.T) {
	t.Parallel()
	c := startRealCluster(t, [2]string{"127.0.0.103", "127.0.0.104"})
	gw, base := startRealGateway(t, c, "127.0.0.103")
	if code, body, err := streamPut(base+"/photos/fds/small.bin", 13, 4<<10); err != nil || code != 201 {
		t.Fatalf("PUT /photos/fds/small.bin = %d %q, %v; want 201", code, body, err)
	}
	checkFDsReleased(t, "gateway", gw, base[len("http://"):], "/photos/fds/small.bin")
}

// TestE2EStoragedReleasesClientFDs: a real storage node closes the descriptors of keep-alive
// clients that went away (and of the files they read).
func TestE2EStoragedReleasesClientFDs(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "dev1"), 0o755); err != nil {
		t.Fatal(err)
	}
	node := startReal(t, "storaged", "--listen", "127.0.0.105:0", "--mgmt-listen", "127.0.0.105:0", "--docroot", root)
	addr := node.mustLog(t, storagedServingRE)[1]
	const path = "/dev1/0/000/000/0000000002.fid"
	if code, body, err := streamPut("http://"+addr+path, 17, 4<<10); err != nil || code/100 != 2 {
		t.Fatalf("PUT %s = %d %q, %v; want 2xx", path, code, body, err)
	}
	checkFDsReleased(t, "storaged", node, addr, path)
}
