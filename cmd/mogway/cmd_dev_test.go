package main

import (
	"bytes"
	"context"
	"image/png"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mogway/mogway/internal/testutil"
)

// freeAddr returns an address on ip with a port that was free a moment ago.
func freeAddr(t *testing.T, ip string) string { t.Helper(); return testutil.FreeAddr(t, ip) }

func TestDevServesSampleImage(t *testing.T) {
	gw := freeAddr(t, "127.0.0.1")
	trHTTP, gwMetrics, node1 := freeAddr(t, "127.0.0.1"), freeAddr(t, "127.0.0.1"), freeAddr(t, "127.0.0.41")
	args := []string{"--data", t.TempDir(), "--listen", gw,
		"--tracker-listen", freeAddr(t, "127.0.0.1"),
		"--tracker-http-listen", trHTTP, "--metrics-listen", gwMetrics,
		"--node1", node1, "--node2", freeAddr(t, "127.0.0.42")}
	ctx, cancel := context.WithCancel(context.Background())
	var stderr bytes.Buffer
	sw := &syncWriter{w: &stderr}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, &env{stdin: strings.NewReader(""), stdout: io.Discard, stderr: sw}, append([]string{"dev"}, args...))
	}()
	defer func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("mogway dev exited %d", code)
		}
	}()
	want, err := samplePNG()
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + gw + "/demo/sample.png"
	deadline := time.Now().Add(90 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			body, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			if rerr == nil && resp.StatusCode == 200 {
				if !bytes.Equal(body, want) {
					t.Fatalf("GET %s: %d bytes differ from the sample image (%d bytes)", url, len(body), len(want))
				}
				if ct := resp.Header.Get("Content-Type"); ct != "image/png" {
					t.Errorf("Content-Type = %q, want image/png", ct)
				}
				// The demo route makes image variants: a thumbnail 160 px wide of the 480×270 sample.
				thumb := url + "?w=160"
				if code, body := testutil.Fetch(t, "GET", thumb, nil, nil); code != 200 {
					t.Errorf("GET %s = %d %q, want 200", thumb, code, body)
				} else if cfg, err := png.DecodeConfig(bytes.NewReader(body)); err != nil || cfg.Width != 160 || cfg.Height != 90 {
					t.Errorf("GET %s: %dx%d PNG (%v), want 160x90", thumb, cfg.Width, cfg.Height, err)
				}
				// The banner is printed once the gateway serves; every daemon answers /metrics and
				// the "Try:" list names the pages.
				waitBanner(t, sw)
				for _, u := range []string{"http://" + trHTTP + "/", "http://" + trHTTP + "/metrics",
					"http://" + gwMetrics + "/metrics", "http://" + node1 + "/metrics"} {
					resp, err := http.Get(u)
					if err != nil {
						t.Errorf("GET %s: %v", u, err)
						continue
					}
					resp.Body.Close()
					if resp.StatusCode != 200 {
						t.Errorf("GET %s = %d, want 200", u, resp.StatusCode)
					}
					if !strings.Contains(sw.String(), u) {
						t.Errorf("the Try: list lacks %s:\n%s", u, sw.String())
					}
				}
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s never succeeded: %v", url, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestDevKeepsDataForNextRun: README.md, `make run` (`mogway dev --data var/dev`) keeps its data
// for the next run. A file uploaded in a first run of dev is listed, fetched through the tracker and
// storage nodes, and served by the gateway in a second run on the same data directory and addresses.
// The first run never asks its gateway for the file, so the gateway's disk cache cannot answer for
// the tracker and storage nodes.
func TestDevKeepsDataForNextRun(t *testing.T) {
	trackerAddr, gw := freeAddr(t, "127.0.0.1"), freeAddr(t, "127.0.0.1")
	args := []string{"dev", "--data", t.TempDir(), "--listen", gw, "--tracker-listen", trackerAddr,
		"--tracker-http-listen", freeAddr(t, "127.0.0.1"), "--metrics-listen", freeAddr(t, "127.0.0.1"),
		"--node1", freeAddr(t, "127.0.0.43"), "--node2", freeAddr(t, "127.0.0.44")}
	tr := "--trackers=" + trackerAddr
	banner := regexp.MustCompile(`Ctrl-C stops the cluster`)
	const body = "stored in the first run"

	first := startDaemon(t, args...)
	first.waitLog(t, banner)
	if r := mog(t, body, "upload", tr, "--domain=demo", "--key=kept.txt"); r.code != 0 {
		t.Fatalf("%v\nwant exit 0", r)
	}
	if code := first.stop(t); code != 0 {
		t.Fatalf("first mogway dev run stopped with exit %d, want 0; log:\n%s", code, first.stderr.String())
	}

	second := startDaemon(t, args...)
	second.waitLog(t, banner)
	if r := mustMog(t, "ls", tr, "--domain=demo"); r.stdout != "kept.txt\nsample.png\n" {
		t.Errorf("%v\nwant kept.txt and sample.png", r)
	}
	if r := mustMog(t, "fetch", tr, "--domain=demo", "--key=kept.txt"); r.stdout != body {
		t.Errorf("%v\nwant %q", r, body)
	}
	url := "http://" + gw + "/demo/kept.txt"
	if code, got := testutil.Fetch(t, "GET", url, nil, nil); code != 200 || string(got) != body {
		t.Errorf("GET %s in the second run = %d %q, want 200 %q", url, code, got, body)
	}
}

// waitBanner waits until the dev banner's "Try:" list was written to w.
func waitBanner(t *testing.T, w *syncWriter) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !strings.Contains(w.String(), "Ctrl-C stops the cluster") {
		if time.Now().After(deadline) {
			t.Fatalf("no banner after %v:\n%s", waitTimeout, w.String())
		}
		time.Sleep(pollInterval) // polling interval, not synchronisation
	}
}

// syncWriter serialises writes from the cluster's goroutines.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

// String returns what was written so far (w must be a *bytes.Buffer).
func (s *syncWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.(*bytes.Buffer).String()
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
