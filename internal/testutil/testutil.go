// Package testutil holds small helpers shared by tests of several packages: a scripted tracker on
// a loopback address, a loopback listener or free address, HTTP requests that fail the test when
// no answer comes, stand-in servers' files served from a map, a settable clock, a buffer safe for
// concurrent writers, a listener counting the deadlines set on its connections, the test binary run
// again as a peer process, and checks of a function against a table of cases. It imports no mogway
// package, so any package's tests may use it.
package testutil

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// SyncBuffer is a bytes.Buffer safe for concurrent use, for a daemon's logger or access log that a
// test reads while the daemon writes. The zero value is ready to use.
type SyncBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

// Write appends p to the buffer.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what has been written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Clock is a settable clock for code that takes a func() time.Time, so freshness and expiry
// tests move time forward instead of sleeping. Its methods are safe for concurrent use.
type Clock struct {
	mu sync.Mutex // guards t
	t  time.Time
}

// NewClock returns a Clock set to a fixed instant, 2026-01-02 03:04:05 UTC.
func NewClock() *Clock { return &Clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Listen listens on the TCP address addr (such as "127.0.0.2:0"), failing the test if it cannot,
// and closes the listener when the test ends unless a server closed it first.
func Listen(t testing.TB, addr string) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// ServeCancelled calls serve with a new listener on ip and a context cancelled before the call, as
// when a daemon is stopped right after it starts, and fails the test unless serve returns nil
// within a minute.
func ServeCancelled(t testing.TB, ip string, serve func(ctx context.Context, ln net.Listener) error) {
	t.Helper()
	ln := Listen(t, ip+":0")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	done := make(chan error, 1)
	go func() { done <- serve(ctx, ln) }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve with a context cancelled before it started = %v, want nil", err)
		}
	case <-time.After(time.Minute):
		t.Fatalf("Serve with a context cancelled before it started did not return")
	}
}

// Dial connects to the TCP address addr, failing the test (Fatalf, then returns nil) if it cannot.
// The caller closes the connection.
func Dial(t testing.TB, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("%v", err)
		return nil
	}
	return c
}

// TCPPair returns both ends of a loopback TCP connection on ip (such as "127.0.0.1"), closed when
// the test ends.
func TCPPair(t testing.TB, ip string) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	acc := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		acc <- c
	}()
	client = Dial(t, ln.Addr().String())
	server = <-acc
	if server == nil {
		client.Close()
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// FreeAddr returns an address on ip (such as "127.0.0.2") with a port that was free a moment ago:
// nothing listens there, so a dial is refused, until something else binds it.
func FreeAddr(t testing.TB, ip string) string {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// Action says what a Tracker does after writing its reply to a request line.
type Action int

// The actions.
const (
	Keep   Action = iota // keep the connection for the next request
	Hangup               // close the connection
	Hang                 // stop reading and never answer again on this connection
)

// Tracker is a scripted tracker: a line server on a loopback address that hands each request line
// (without its CR LF) to a function and writes the bytes it returns, CR LF included, or a partial
// line to simulate a crash. Its methods are safe for concurrent use.
type Tracker struct {
	// Addr is the host:port the tracker listens on.
	Addr string

	answer  func(line string) (reply string, next Action)
	accepts atomic.Int64
	mu      sync.Mutex // guards lines
	lines   []string
}

// NewTracker starts a Tracker on ip (an address such as "127.0.0.2") with answer as its script. It
// stops, closing every connection, when the test ends.
func NewTracker(t testing.TB, ip string, answer func(line string) (reply string, next Action)) *Tracker {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	ft := &Tracker{Addr: ln.Addr().String(), answer: answer}
	var wg sync.WaitGroup
	done := make(chan struct{})
	t.Cleanup(func() {
		close(done)
		ln.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			ft.accepts.Add(1)
			wg.Go(func() { ft.serve(c, done) })
		}
	})
	return ft
}

func (ft *Tracker) serve(c net.Conn, done chan struct{}) {
	defer c.Close()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-done:
			c.Close()
		case <-stop:
		}
	}()
	br := bufio.NewReader(c)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		ft.mu.Lock()
		ft.lines = append(ft.lines, line)
		ft.mu.Unlock()
		out, next := ft.answer(line)
		if out != "" {
			if _, err := c.Write([]byte(out)); err != nil {
				return
			}
		}
		switch next {
		case Hangup:
			return
		case Hang:
			<-done
			return
		}
	}
}

// Lines returns the request lines received so far, in order of arrival.
func (ft *Tracker) Lines() []string {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	return append([]string(nil), ft.lines...)
}

// Accepts returns the number of connections accepted so far.
func (ft *Tracker) Accepts() int64 { return ft.accepts.Load() }

// ReadCalls is this process's count of read system calls, successful or not, as the kernel keeps it
// (/proc/self/io syscr); a child process's count joins it once the child is waited for. It skips
// the test where there is no /proc/self/io.
func ReadCalls(t testing.TB) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		t.Skipf("no /proc/self/io: %v", err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "syscr: "); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no syscr in /proc/self/io")
	return 0
}
