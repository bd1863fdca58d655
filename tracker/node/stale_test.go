package node

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mogway/mogway/internal/conf"
	"github.com/mogway/mogway/internal/netx"
	"github.com/mogway/mogway/internal/testutil"
	"github.com/mogway/mogway/storaged"
)

// TestSizeAfterStoragedIdleTimeout: a real storage node closes the kept HEAD connections it finds idle
// past its idle_timeout; the next HEAD still answers, however many of them the pool held.
func TestSizeAfterStoragedIdleTimeout(t *testing.T) {
	const kept, idle = 4, 300 * time.Millisecond
	docroot := t.TempDir()
	file := filepath.Join(docroot, "dev1", "0", "000", "000", "0000000001.fid")
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	srv, err := storaged.New(storaged.Config{Docroot: docroot, MgmtListen: storaged.MgmtOff, IdleTimeout: conf.Duration(idle)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln := testutil.Listen(t, "127.0.0.1:0")
	testutil.Run(t, "storaged", func(ctx context.Context) error { return srv.Serve(ctx, ln, nil) })
	addr := ln.Addr().String()
	u := "http://" + addr + "/dev1/0/000/000/0000000001.fid"

	c := New(Config{IdleConns: kept})
	t.Cleanup(c.Close)
	// kept connections, each with a HEAD answered on it, into the pool.
	for range kept {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		hc := newHeadConn(nc)
		deadline := time.Now().Add(10 * time.Second)
		res, err := hc.roundTrip(context.Background(), addr, "/dev1/0/000/000/0000000001.fid", true, deadline, deadline)
		if n, serr := res.size(u); err != nil || serr != nil || n != 5 || !res.keep {
			t.Fatalf("HEAD on a new connection = %d, %v, %v, keep %v; want 5 and a kept connection", n, err, serr, res.keep)
		}
		c.heads.put(addr, hc)
	}
	testutil.WaitFor(t, 20*time.Second, "the node to close the kept connections", func() bool {
		c.heads.mu.Lock()
		defer c.heads.mu.Unlock()
		for _, hc := range c.heads.idle[addr] {
			if netx.PeerClosed(hc.nc) == nil {
				return false
			}
		}
		return true
	})
	for i := range 3 {
		if n, err := c.Size(context.Background(), u); err != nil || n != 5 {
			t.Fatalf("Size #%d after the node's idle timeout = %d, %v; want 5", i+1, n, err)
		}
	}
	testutil.WaitFor(t, time.Second, "the pool to keep the live connection", func() bool {
		c.heads.mu.Lock()
		defer c.heads.mu.Unlock()
		return len(c.heads.idle[addr]) == 1
	})
}
