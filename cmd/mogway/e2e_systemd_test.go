package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// sdNotify is a NOTIFY_SOCKET for a daemon under test: each line of each datagram it receives
// arrives on states, in order.
type sdNotify struct {
	path   string
	states chan string
}

func newSDNotify(t *testing.T) *sdNotify {
	t.Helper()
	dir, err := os.MkdirTemp("", "sd") // short: a socket path has at most 107 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	n := &sdNotify{path: filepath.Join(dir, "notify"), states: make(chan string, 64)}
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: n.path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 4096)
		for {
			k, _, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			for _, line := range strings.Split(strings.TrimSpace(string(buf[:k])), "\n") {
				n.states <- line
			}
		}
	}()
	return n
}

// want fails the test unless the next state the daemon sends is state.
func (n *sdNotify) want(t *testing.T, p *realProc, state string) {
	t.Helper()
	select {
	case got := <-n.states:
		if got != state {
			t.Fatalf("sd_notify: got %q, want %q; log:\n%s", got, state, p.out.String())
		}
	case <-time.After(waitTimeout):
		t.Fatalf("sd_notify: no %q within %v; log:\n%s", state, waitTimeout, p.out.String())
	}
}

// startActivated starts `mogway args...` as systemd would start a notify service with sockets: a
// listening socket for each name (on ip), passed as LISTEN_FDS with LISTEN_FDNAMES, and n as its
// NOTIFY_SOCKET. It returns the process and the sockets' addresses, in the order of names.
func startActivated(t *testing.T, n *sdNotify, ip string, names []string, args ...string) (*realProc, []string) {
	t.Helper()
	// LISTEN_PID must be the daemon's own pid: a shell learns it and execs the daemon in its place.
	cmd := exec.Command("/bin/sh", append([]string{"-c", `LISTEN_PID=$$ exec "$0" "$@"`, mogwayBinary(t)}, args...)...)
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+n.path, fmt.Sprintf("LISTEN_FDS=%d", len(names)),
		"LISTEN_FDNAMES="+strings.Join(names, ":"))
	var addrs []string
	for range names {
		ln, err := net.Listen("tcp", ip+":0")
		if err != nil {
			t.Fatal(err)
		}
		f, err := ln.(*net.TCPListener).File()
		ln.Close() // f keeps the socket open for the daemon
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close() // the daemon has its own descriptor once started
		cmd.ExtraFiles = append(cmd.ExtraFiles, f)
		addrs = append(addrs, ln.Addr().String())
	}
	return startCmd(t, cmd, strings.Join(args, " ")), addrs
}

// stopExpectingZero sends SIGTERM to p and fails the test unless p exits with status 0.
func stopExpectingZero(t *testing.T, p *realProc) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(waitTimeout):
		t.Fatalf("mogway %s did not stop within %v of SIGTERM", p.name, waitTimeout)
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("mogway %s exited with %d after SIGTERM, want 0; log:\n%s", p.name, code, p.out.String())
	}
}

// TestE2ESystemdGateway runs the gateway as systemd would: on the socket named http, reporting
// READY=1 once it serves, RELOADING=1 and READY=1 around a reload (SIGHUP) that applies the new
// file, the same around a reload of a broken file, which keeps the running configuration, and
// STOPPING=1 on SIGTERM, after which it exits 0.
func TestE2ESystemdGateway(t *testing.T) {
	t.Parallel()
	n := newSDNotify(t)
	cfg := filepath.Join(t.TempDir(), "mogway.yaml")
	write := func(health string) {
		body := "gateway:\n  trackers: [127.0.0.1:1]\n  health_path: " + health +
			"\n  routes:\n    - prefix: /d/\n      domain: d\n"
		if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("/healthz")
	gw, addrs := startActivated(t, n, "127.0.0.141", []string{"http"}, "gateway", "-c", cfg)
	n.want(t, gw, "READY=1")
	healthy := func(path string) bool {
		t.Helper()
		resp, err := http.Get("http://" + addrs[0] + path)
		if err != nil {
			t.Fatalf("GET %s on the activated socket: %v; log:\n%s", path, err, gw.out.String())
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}
	if !healthy("/healthz") {
		t.Fatalf("GET /healthz on the activated socket is not 200")
	}
	write("/alive")
	gw.cmd.Process.Signal(syscall.SIGHUP)
	n.want(t, gw, "RELOADING=1")
	n.want(t, gw, "READY=1")
	if !healthy("/alive") || healthy("/healthz") {
		t.Errorf("after the reload: /alive and /healthz answer as before it; want the new health_path")
	}
	if err := os.WriteFile(cfg, []byte("gateway:\n  routes: [\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	gw.cmd.Process.Signal(syscall.SIGHUP)
	n.want(t, gw, "RELOADING=1")
	n.want(t, gw, "READY=1")
	gw.mustLog(t, regexp.MustCompile(regexp.QuoteMeta("reload failed; still serving the previous configuration")))
	if !healthy("/alive") {
		t.Errorf("after a reload of a broken file: /alive is not 200; want the running configuration kept")
	}
	stopExpectingZero(t, gw)
	n.want(t, gw, "STOPPING=1")
}

// TestE2ESystemdStoragedAndTracker: a storage node on the sockets named http and mgmt, and a
// tracker on the socket named tracker, report READY=1 once they serve there and STOPPING=1 on
// SIGTERM, after which they exit 0.
func TestE2ESystemdStoragedAndTracker(t *testing.T) {
	t.Parallel()
	n := newSDNotify(t)
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "dev1"), 0o755); err != nil {
		t.Fatal(err)
	}
	node, addrs := startActivated(t, n, "127.0.0.142", []string{"http", "mgmt"}, "storaged", "--docroot", root)
	n.want(t, node, "READY=1")
	resp, err := http.Get("http://" + addrs[0] + "/dev1/usage")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /dev1/usage on the socket named http = %v, %v; want 200", resp, err)
	}
	resp.Body.Close()
	if got := sideChannel(t, addrs[1], "size /dev1/usage"); !strings.HasPrefix(got, "/dev1/usage ") || strings.HasSuffix(got, " -1") {
		t.Errorf("size /dev1/usage on the socket named mgmt = %q, want its size", got)
	}
	stopExpectingZero(t, node)
	n.want(t, node, "STOPPING=1")

	tr, taddrs := startActivated(t, n, "127.0.0.143", []string{"tracker"}, "tracker",
		"--http-listen", "127.0.0.143:0", "--db", "sqlite:"+filepath.Join(t.TempDir(), "t.db"))
	n.want(t, tr, "READY=1")
	if got := sideChannel(t, taddrs[0], "noop"); !strings.HasPrefix(got, "OK") {
		t.Errorf("noop on the socket named tracker = %q, want OK", got)
	}
	stopExpectingZero(t, tr)
	n.want(t, tr, "STOPPING=1")
}

// sideChannel sends one line to a line-protocol server at addr and returns its first reply line.
func sideChannel(t *testing.T, addr, line string) string {
	t.Helper()
	c, r := sendTrackerLine(t, addr, line)
	defer c.Close()
	reply, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("%s to %s: reply %q, %v", line, addr, reply, err)
	}
	return strings.TrimSpace(reply)
}
