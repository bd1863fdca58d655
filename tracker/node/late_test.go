package node

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// gatedNode answers each HEAD with Content-Length 5 once gate is closed, holding the answer until
// then (for ever when gate is nil). It returns the URL of a file on it and the count of accepted
// connections.
func gatedNode(t *testing.T, gate <-chan struct{}) (string, *atomic.Int64) {
	t.Helper()
	return gatedScriptedNode(t, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", false, gate)
}

// TestSizeWithinLate: a node that has not begun its answer within the patience makes SizeWithin
// return a LateSize, whose Wait gets the answer once it comes; the connection is then kept for the
// next HEAD, with nothing of the late answer left on it.
func TestSizeWithinLate(t *testing.T) {
	gate := make(chan struct{})
	u, conns := gatedNode(t, gate)
	c := New(Config{Timeout: time.Minute})
	t.Cleanup(c.Close)
	ctx := context.Background()
	n, late, err := c.SizeWithin(ctx, u, time.Millisecond)
	if late == nil {
		t.Fatalf("SizeWithin of a node holding its answer = %d, %v, want a LateSize", n, err)
	}
	if n != 0 || err != nil {
		t.Errorf("SizeWithin with a LateSize = %d, %v, want 0, nil", n, err)
	}
	close(gate)
	if n, err := late.Wait(ctx); n != 5 || err != nil {
		t.Fatalf("LateSize.Wait = %d, %v, want 5, nil", n, err)
	}
	if n, late, err := c.SizeWithin(ctx, u, time.Minute); n != 5 || late != nil || err != nil {
		t.Fatalf("SizeWithin after the late answer = %d, %v, %v, want 5, nil, nil", n, late, err)
	}
	if got := conns.Load(); got != 1 {
		t.Errorf("the node accepted %d connections, want 1 (kept after the late answer)", got)
	}
}

// TestSizeWithinLateTimeout: a late HEAD to a node that never answers ends with a timeout
// (IsTimeout) once the Client's Timeout has passed, and with the context's error, which is no
// timeout, when its context ends first. SizeWithin itself never reports the end of its patience
// as an error, which a caller would take for a hung node.
func TestSizeWithinLateTimeout(t *testing.T) {
	u, _ := gatedNode(t, nil) // never answers
	c := New(Config{Timeout: 200 * time.Millisecond})
	t.Cleanup(c.Close)
	ctx := context.Background()
	_, late, err := c.SizeWithin(ctx, u, time.Millisecond)
	if late == nil || err != nil {
		t.Fatalf("SizeWithin of a silent node = %v, %v, want a LateSize and no error", late, err)
	}
	if _, err := late.Wait(ctx); !IsTimeout(err) {
		t.Fatalf("LateSize.Wait on a silent node = %v, want a timeout", err)
	}

	c = New(Config{Timeout: time.Minute})
	t.Cleanup(c.Close)
	if _, late, err = c.SizeWithin(ctx, u, time.Millisecond); late == nil || err != nil {
		t.Fatalf("SizeWithin of a silent node = %v, %v, want a LateSize and no error", late, err)
	}
	wctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := late.Wait(wctx); !errors.Is(err, context.Canceled) || IsTimeout(err) {
		t.Fatalf("LateSize.Wait with its context cancelled = %v, want context.Canceled and no timeout", err)
	}
}

// TestSizeWithinPatienceBeforeWrite: a patience over before the request could even be sent (on a
// kept connection, the request is written by the read of its answer, under the read deadline)
// leaves the request to Wait, which sends it and gets the answer instead of waiting for the answer
// to a request never sent.
func TestSizeWithinPatienceBeforeWrite(t *testing.T) {
	u, conns := gatedNode(t, closedGate)
	c := New(Config{Timeout: time.Minute})
	t.Cleanup(c.Close)
	ctx := context.Background()
	if n, err := c.Size(ctx, u); n != 5 || err != nil {
		t.Fatalf("Size = %d, %v, want 5, nil", n, err)
	}
	_, late, err := c.SizeWithin(ctx, u, time.Nanosecond)
	if late == nil || err != nil {
		t.Fatalf("SizeWithin with a patience over at once = %v, %v, want a LateSize and no error", late, err)
	}
	// The test's deadline: without the request, Wait would wait the minute out.
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if n, err := late.Wait(wctx); n != 5 || err != nil {
		t.Fatalf("LateSize.Wait = %d, %v, want 5, nil", n, err)
	}
	if got := conns.Load(); got != 1 {
		t.Errorf("the node accepted %d connections, want 1", got)
	}
}

// TestSizeWithinSlowHead: an answer begun within the patience may end after it: the rest of the
// head is awaited until the Timeout, not taken for a late or failed HEAD.
func TestSizeWithinSlowHead(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		if _, err := http.ReadRequest(bufio.NewReader(nc)); err != nil {
			return
		}
		nc.Write([]byte("HTTP/1.1 200 OK\r\n"))
		time.Sleep(100 * time.Millisecond) // a slow node: the rest comes after the patience
		nc.Write([]byte("Content-Length: 5\r\n\r\n"))
	}()
	c := New(Config{Timeout: time.Minute})
	t.Cleanup(c.Close)
	u := "http://" + ln.Addr().String() + "/dev1/0/000/000/0000000001.fid"
	if n, late, err := c.SizeWithin(context.Background(), u, 10*time.Millisecond); n != 5 || late != nil || err != nil {
		t.Fatalf("SizeWithin = %d, %v, %v, want 5, nil, nil", n, late, err)
	}
}
