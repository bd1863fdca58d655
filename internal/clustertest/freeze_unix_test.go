//go:build unix

package clustertest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mogway/mogway/internal/testutil"
	"github.com/mogway/mogway/storaged"
)

// storagedChildEnv, when set to a docroot, makes the test binary run a storage node on it instead
// of the tests (TestMain): the real process FreezeProcess is tested on.
const storagedChildEnv = "CLUSTERTEST_STORAGED_DOCROOT"

func TestMain(m *testing.M) {
	if docroot := os.Getenv(storagedChildEnv); docroot != "" {
		if err := runStoraged(docroot); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runStoraged serves docroot on a loopback port and prints "listening <addr>" once it accepts.
func runStoraged(docroot string) error {
	srv, err := storaged.New(storaged.Config{Docroot: docroot, MgmtListen: storaged.MgmtOff}, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Printf("listening %s\n", ln.Addr())
	return srv.Serve(context.Background(), ln, nil)
}

// startStoragedProcess runs a storage node as a child process and returns it and its HTTP address.
func startStoragedProcess(t *testing.T) (*os.Process, string) {
	t.Helper()
	docroot := t.TempDir()
	if err := os.Mkdir(filepath.Join(docroot, "dev1"), 0o755); err != nil {
		t.Fatal(err)
	}
	c := testutil.StartChild(t, storagedChildEnv+"="+docroot)
	line := c.ReadLine(t)
	addr, ok := strings.CutPrefix(line, "listening ")
	if !ok {
		t.Fatalf("storage node process said %q; want listening <addr>", line)
	}
	return c.Process(), addr
}

// TestFreezeProcess stops a real storage node process: its port still accepts connections but a
// request gets no answer, and after thaw the same node answers again.
func TestFreezeProcess(t *testing.T) {
	p, addr := startStoragedProcess(t)
	u := "http://" + addr + "/dev1/0/000/000/0000000001.fid"
	hc := &http.Client{Timeout: 200 * time.Millisecond}
	t.Cleanup(hc.CloseIdleConnections)
	req, err := http.NewRequest(http.MethodPut, u, bytes.NewReader([]byte("frozen bytes")))
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := (&http.Client{Timeout: Timeout}).Do(req); err != nil || resp.StatusCode/100 != 2 {
		t.Fatalf("PUT %s = %v, %v", u, resp, err)
	}

	thaw := FreezeProcess(t, p)
	conn, err := net.DialTimeout("tcp", addr, Timeout)
	if err != nil {
		t.Fatalf("dial a frozen node: %v; the kernel should still accept", err)
	}
	conn.Close()
	if resp, err := hc.Get(u); err == nil {
		resp.Body.Close()
		t.Fatalf("GET %s on a frozen node answered HTTP %d", u, resp.StatusCode)
	} else if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Fatalf("GET %s on a frozen node: %v, want a timeout", u, err)
	}

	thaw()
	hc.Timeout = Timeout
	resp, err := hc.Get(u)
	if err != nil {
		t.Fatalf("GET %s after thaw: %v", u, err)
	}
	defer resp.Body.Close()
	if b, _ := io.ReadAll(resp.Body); string(b) != "frozen bytes" {
		t.Errorf("GET %s after thaw = %q, want %q", u, b, "frozen bytes")
	}
}

// TestFreezeNode does the same with an in-process node of a cluster.
func TestFreezeNode(t *testing.T) {
	c := New(t, Options{Nodes: 1, Domains: map[string]map[string]int{"d": {"one": 1}}})
	c.Upload(t, "d", "k", "one", []byte("frozen bytes"))
	u := c.GetPaths(t, "d", "k")[0]
	hc := &http.Client{Timeout: 200 * time.Millisecond}
	t.Cleanup(hc.CloseIdleConnections)
	if resp, err := hc.Get(u); err != nil {
		t.Fatalf("GET %s before freezing: %v", u, err)
	} else {
		resp.Body.Close() // the idle keep-alive connection must stall too
	}

	c.FreezeNode(t, 0)
	addr, _ := c.Node(0)
	conn, err := net.DialTimeout("tcp", addr, Timeout)
	if err != nil {
		t.Fatalf("dial a frozen node: %v; the kernel should still accept", err)
	}
	conn.Close()
	for range 2 { // once on the kept-alive connection, once on a new one
		if resp, err := hc.Get(u); err == nil {
			resp.Body.Close()
			t.Fatalf("GET %s on a frozen node answered HTTP %d", u, resp.StatusCode)
		} else if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
			t.Fatalf("GET %s on a frozen node: %v, want a timeout", u, err)
		}
	}

	c.ThawNode(t, 0)
	if got := c.Fetch(t, "d", "k"); string(got) != "frozen bytes" {
		t.Errorf("Fetch after thaw = %q, want %q", got, "frozen bytes")
	}
}
