//go:build linux

package netx

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/mogway/mogway/internal/testutil"
)

// A request written by WriteRead is answered; so is one larger than the socket buffers (the write
// finishes under the write deadline while the peer reads it slowly), and the connection then reads
// and writes as before.
func TestWriteRead(t *testing.T) {
	for _, size := range []int{5, 16 << 20} {
		t.Run(strconv.Itoa(size), func(t *testing.T) {
			c, s := rawPair(t)
			req := bytes.Repeat([]byte("r"), size)
			go func() {
				// Read the whole request slowly enough for the client's buffers to fill.
				buf := make([]byte, 64<<10)
				for got := 0; got < size; {
					n, err := s.Read(buf)
					if err != nil {
						return
					}
					got += n
					if size > 5 {
						time.Sleep(time.Millisecond)
					}
				}
				s.Write([]byte("answer"))
			}()
			c.SetDeadline(time.Now().Add(time.Minute))
			buf := make([]byte, 64)
			n, err := c.(WriteReader).WriteRead(req, buf)
			if err != nil || string(buf[:n]) != "answer" {
				t.Fatalf("WriteRead = %q, %v; want the answer", buf[:n], err)
			}
			go s.Write([]byte("more"))
			if n, err := c.Read(buf); err != nil || string(buf[:n]) != "more" {
				t.Fatalf("Read after WriteRead = %q, %v", buf[:n], err)
			}
		})
	}
}

func TestWriteReadErrors(t *testing.T) {
	t.Run("read deadline", func(t *testing.T) {
		c, s := rawPair(t)
		c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		_, err := c.(WriteReader).WriteRead([]byte("req"), make([]byte, 8))
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("WriteRead with no answer: %v; want a timeout", err)
		}
		buf := make([]byte, 8)
		if n, err := io.ReadFull(s, buf[:3]); err != nil || string(buf[:n]) != "req" {
			t.Fatalf("the peer read %q, %v; want the request, written before the wait", buf[:n], err)
		}
	})
	t.Run("peer closed before", func(t *testing.T) {
		// The peer's FIN came before the request: the request draws a reset, which wakes the
		// wait. The wait must not hang for want of a read before it.
		c, s := rawPair(t)
		s.Close()
		time.Sleep(20 * time.Millisecond)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		start := time.Now()
		_, err := c.(WriteReader).WriteRead([]byte("req"), make([]byte, 8))
		if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("WriteRead on a connection the peer closed: %v after %v; want EOF or a reset at once", err, time.Since(start))
		}
	})
	t.Run("peer reset", func(t *testing.T) {
		c, s := rawPair(t)
		s.(*RawTCP).SetLinger(0)
		s.Close()
		time.Sleep(20 * time.Millisecond)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err := c.(WriteReader).WriteRead([]byte("req"), make([]byte, 8))
		var ne *net.OpError
		if !errors.As(err, &ne) || ne.Op != "write" || !errors.Is(err, syscall.EPIPE) && !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("WriteRead after a reset: %v; want a write OpError with EPIPE or ECONNRESET", err)
		}
	})
	t.Run("own close", func(t *testing.T) {
		c, _ := rawPair(t)
		done := make(chan error, 1)
		go func() {
			_, err := c.(WriteReader).WriteRead([]byte("req"), make([]byte, 8))
			done <- err
		}()
		time.Sleep(20 * time.Millisecond)
		c.Close()
		if err := <-done; !errors.Is(err, net.ErrClosed) {
			t.Fatalf("WriteRead waiting when the connection closed: %v; want net.ErrClosed", err)
		}
	})
}

// echoPause is how long the peer of TestWriteReadOneReadPerAnswer waits before it answers a line,
// so that a Read right after the Write of the line comes before the answer even when a loaded
// machine runs it late: the read then finds nothing, as it does for a peer across a network. It
// paces the peer; the test measures no time.
const echoPause = time.Millisecond

// echoChild is the peer of TestWriteReadOneReadPerAnswer, in its own process so that its reads
// are not counted with the test's: it answers every line with "ok\n" after echoPause.
func TestMain(m *testing.M) {
	if addr := os.Getenv("NETX_ECHO_CHILD"); addr != "" {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			os.Exit(2)
		}
		os.Stdout.WriteString(ln.Addr().String() + "\n")
		c, err := ln.Accept()
		if err != nil {
			os.Exit(2)
		}
		br := bufio.NewReader(c)
		for {
			if _, err := br.ReadSlice('\n'); err != nil {
				os.Exit(0)
			}
			time.Sleep(echoPause)
			if _, err := c.Write([]byte("ok\n")); err != nil {
				os.Exit(0)
			}
		}
	}
	os.Exit(m.Run())
}

// Each round trip through WriteRead reads the socket once, when the answer is there: a Write and a
// Read would also read it right after the write, find nothing (EAGAIN) and only then wait, since the
// peer, another process pausing before it answers (echoPause), has not answered by then. Counted
// by the kernel, with a Write and a Read per round trip as the control.
func TestWriteReadOneReadPerAnswer(t *testing.T) {
	peer := testutil.StartChild(t, "NETX_ECHO_CHILD=127.0.0.5:0")
	nc, err := net.Dial("tcp", peer.ReadLine(t))
	if err != nil {
		t.Fatal(err)
	}
	c := Raw(nc)
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Minute))
	ping, buf := []byte("ping\n"), make([]byte, 16)
	const rounds = 400
	for _, way := range []struct {
		name      string
		writeRead bool
		roundTrip func() (int, error)
	}{
		{"WriteRead", true, func() (int, error) { return c.(WriteReader).WriteRead(ping, buf) }},
		{"Write, then Read", false, func() (int, error) {
			if _, err := c.Write(ping); err != nil {
				return 0, err
			}
			return c.Read(buf)
		}},
	} {
		before := testutil.ReadCalls(t)
		for range rounds {
			if n, err := way.roundTrip(); err != nil || string(buf[:n]) != "ok\n" {
				t.Fatalf("%s = %q, %v", way.name, buf[:n], err)
			}
		}
		reads := testutil.ReadCalls(t) - before
		t.Logf("%s: %d round trips, %d read system calls", way.name, rounds, reads)
		// Spurious wake-ups (a readiness event of an earlier answer delivered late) cost a read
		// each; a read before every wait would cost one per round trip.
		if way.writeRead && reads > rounds+rounds/4 {
			t.Errorf("%d round trips through WriteRead made %d read system calls, want about one each", rounds, reads)
		}
		// The control: a read that finds nothing follows most writes. Were it not seen, the
		// count could not tell the two apart.
		if !way.writeRead && reads <= rounds+rounds/4 {
			t.Errorf("%d round trips of a Write, then a Read made %d read system calls, want more than %d (the count sees no EAGAIN reads)", rounds, reads, rounds+rounds/4)
		}
	}
}

func TestWriteReadAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race build reads and writes through the syscall package")
	}
	c, s := rawPair(t)
	go io.Copy(s, s)
	msg, buf := []byte("ping"), make([]byte, 16)
	allocs := testing.AllocsPerRun(200, func() {
		n, err := c.(WriteReader).WriteRead(msg, buf[:len(msg)])
		if err == nil {
			_, err = io.ReadFull(c, buf[n:len(msg)])
		}
		if err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("a WriteRead allocates %.1f times, want 0", allocs)
	}
}

// While WriteRead waits for its answer, another goroutine may write on the connection (as the
// tracker streams !watch lines to a connection waiting for its next request).
func TestWriteReadLetsOthersWrite(t *testing.T) {
	c, s := rawPair(t)
	c.SetDeadline(time.Now().Add(time.Minute))
	s.SetDeadline(time.Now().Add(time.Minute))
	done := make(chan error, 1)
	go func() {
		buf := make([]byte, 8)
		n, err := c.(WriteReader).WriteRead([]byte("req;"), buf)
		if err == nil && string(buf[:n]) != "answer" {
			err = errors.New("answer " + string(buf[:n]))
		}
		done <- err
	}()
	buf := make([]byte, 4)
	if _, err := io.ReadFull(s, buf); err != nil || string(buf) != "req;" {
		t.Fatalf("peer read %q, %v", buf, err)
	}
	if _, err := c.Write([]byte("line")); err != nil {
		t.Fatalf("Write while WriteRead waits: %v", err)
	}
	if _, err := io.ReadFull(s, buf); err != nil || string(buf) != "line" {
		t.Fatalf("peer read %q, %v", buf, err)
	}
	s.Write([]byte("answer"))
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// A Request holds a request until the read of its answer, which writes it; on a connection that is
// no WriteReader it holds nothing and the caller writes.
func TestRequestHeldUntilRead(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if NewRequest(a).Hold([]byte("x")) {
		t.Fatal("a Request on a pipe held a request it cannot write with its read")
	}
	c, s := rawPair(t)
	c.SetDeadline(time.Now().Add(time.Minute))
	r := NewRequest(c)
	for _, req := range []string{"first;", "second;"} {
		if !r.Hold([]byte(req)) {
			t.Fatal("a Request on a raw TCP connection did not hold the request")
		}
		// Nothing reaches the peer before the read.
		s.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if n, err := s.Read(make([]byte, 16)); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("the peer read %d bytes, %v before the answer was read; want nothing", n, err)
		}
		s.SetReadDeadline(time.Now().Add(time.Minute))
		go func() {
			buf := make([]byte, len(req))
			if _, err := io.ReadFull(s, buf); err == nil && string(buf) == req {
				s.Write([]byte("ok:" + req))
			}
		}()
		buf := make([]byte, 32)
		n, err := io.ReadAtLeast(r, buf, len("ok:"+req))
		if err != nil || string(buf[:n]) != "ok:"+req {
			t.Fatalf("answer %q, %v; want %q", buf[:n], err, "ok:"+req)
		}
	}
}

// A request that a read could not write (its deadline had passed) stays held, and the next read
// writes it: a reader that waits on after a short deadline must not wait for the answer to a
// request that was never sent.
func TestRequestKeptWhenUnwritten(t *testing.T) {
	c, s := rawPair(t)
	r := NewRequest(c)
	if !r.Hold([]byte("req;")) {
		t.Fatal("a Request on a raw TCP connection did not hold the request")
	}
	c.SetDeadline(time.Unix(1, 0))
	if n, err := r.Read(make([]byte, 16)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read past its deadline = %d, %v; want os.ErrDeadlineExceeded", n, err)
	}
	s.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if n, err := s.Read(make([]byte, 16)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the peer read %d bytes, %v after a read past its deadline; want nothing", n, err)
	}
	// Without the held request, the read below waits out this deadline.
	c.SetDeadline(time.Now().Add(10 * time.Second))
	s.SetReadDeadline(time.Now().Add(time.Minute))
	go func() {
		buf := make([]byte, 4)
		if _, err := io.ReadFull(s, buf); err == nil && string(buf) == "req;" {
			s.Write([]byte("ok"))
		}
	}()
	buf := make([]byte, 8)
	n, err := io.ReadAtLeast(r, buf, 2)
	if err != nil || string(buf[:n]) != "ok" {
		t.Fatalf("answer %q, %v; want %q", buf[:n], err, "ok")
	}
}
