package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
)

func TestPprofFlagServesProfilesUntilStop(t *testing.T) {
	addr := freeAddr(t, "127.0.0.1")
	d := daemonFlags{pprof: addr}
	ctx, cancel := context.WithCancel(context.Background())
	wait, err := d.startPprof(ctx, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + addr + "/debug/pprof/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || len(body) == 0 {
		t.Errorf("GET /debug/pprof/cmdline = %d %q, want 200 and the command line", resp.StatusCode, body)
	}
	cancel()
	wait()
	if _, err := http.Get("http://" + addr + "/debug/pprof/"); err == nil {
		t.Error("pprof server still answers after its context ended")
	}
}

func TestPprofOffByDefault(t *testing.T) {
	var d daemonFlags
	wait, err := d.startPprof(context.Background(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	wait() // returns at once: nothing was started
	d.pprof = "256.0.0.1:1"
	if _, err := d.startPprof(context.Background(), slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "--pprof") {
		t.Errorf("startPprof(bad address) = %v, want an error naming --pprof", err)
	}
}
