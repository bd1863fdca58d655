//go:build linux

package httpconn

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/mogway/mogway/internal/testutil"
)

// Held answers reach the client on a kept-alive connection, one after the other; an answer with
// Connection: close reaches it before the close; a streamed answer after a held one is not held:
// its first piece reaches the client before the second is written, which waits for that.
func TestHoldAnswerServed(t *testing.T) {
	gotFirst := make(chan struct{})
	addr := serve(t, NewTracker(Options{}), func(ctx *fasthttp.RequestCtx) {
		if string(ctx.Path()) == "/stream" {
			HoldAnswer(ctx.Conn(), false)
			ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
				w.WriteString("first")
				w.Flush()
				<-gotFirst
				w.WriteString("second")
			})
			return
		}
		HoldAnswer(ctx.Conn(), true)
		ctx.WriteString("ok " + string(ctx.Path())) //nolint:errcheck // test
	})
	c := testutil.Dial(t, addr)
	defer c.Close()
	br := bufio.NewReader(c)
	for i := range 5 {
		path := "/k" + strconv.Itoa(i)
		if status, body := roundTrip(t, c, br, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n"); status != 200 || body != "ok "+path {
			t.Fatalf("answer %d %q, want 200 %q", status, body, "ok "+path)
		}
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
	var resp fasthttp.Response
	resp.StreamBody = true
	if err := resp.Read(br); err != nil {
		t.Fatal(err)
	}
	first := make([]byte, 5)
	if _, err := io.ReadFull(resp.BodyStream(), first); err != nil || string(first) != "first" {
		t.Fatalf("streamed answer began %q, %v; want its first piece before its second is written", first, err)
	}
	close(gotFirst)
	if rest, err := io.ReadAll(resp.BodyStream()); err != nil || string(rest) != "second" {
		t.Fatalf("rest of the streamed answer %q, %v", rest, err)
	}
	resp.CloseBodyStream()
	if status, body := roundTrip(t, c, br, "GET /close HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); status != 200 || body != "ok /close" {
		t.Fatalf("answer with Connection: close: %d %q", status, body)
	}
	if n, err := c.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("after Connection: close: read %d, %v; want EOF", n, err)
	}
}

// A held answer is written before its connection is closed, from any goroutine (a server's
// shutdown, a Tracker evicting it): the client reads the answer, then the end of the stream.
func TestHoldAnswerWrittenOnClose(t *testing.T) {
	for _, how := range []string{"Close", "evicted", "read past its deadline, then Close"} {
		t.Run(how, func(t *testing.T) {
			tr := NewTracker(Options{Max: 1})
			a, b := testutil.TCPPair(t, "127.0.0.1")
			c := tr.admit(a)
			HoldAnswer(c, true)
			if _, err := c.Write([]byte("held answer")); err != nil {
				t.Fatal(err)
			}
			done := make(chan struct{})
			go func() {
				defer close(done)
				switch how {
				case "Close":
					c.Close()
					return
				case "read past its deadline, then Close":
					// A graceful stop wakes a waiting read this way: nothing is written then.
					c.SetReadDeadline(time.Now().Add(-time.Second))
					if _, err := c.Read(make([]byte, 8)); !errors.Is(err, os.ErrDeadlineExceeded) {
						t.Errorf("Read past its deadline: %v, want a timeout", err)
					}
					c.Close()
					return
				}
				tr.mu.Lock()
				tr.idle.pushBack(c)
				tr.mu.Unlock()
				x, y := testutil.TCPPair(t, "127.0.0.1")
				defer y.Close()
				if tr.admit(x) == nil {
					t.Error("the new connection was refused, not given the idle one's slot")
				}
			}()
			b.SetReadDeadline(time.Now().Add(10 * time.Second))
			got, err := io.ReadAll(b)
			<-done
			if err != nil || string(got) != "held answer" {
				t.Fatalf("client read %q, %v; want the held answer, then EOF", got, err)
			}
		})
	}
}

// A held answer is written first by any other write on its connection (writeHeld): by one that is
// held in turn, and by one too large to hold, which is sent at once. The client reads the held
// answer, then the other write, in order.
func TestHoldAnswerWrittenFirst(t *testing.T) {
	for _, tc := range []struct {
		name string
		next []byte
	}{
		{"held in turn", []byte("next answer")},
		{"too large to hold", bytes.Repeat([]byte("n"), maxHeld+1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := testutil.TCPPair(t, "127.0.0.1")
			c := NewTracker(Options{}).admit(a)
			HoldAnswer(c, true)
			held := []byte("held answer")
			if _, err := c.Write(held); err != nil {
				t.Fatal(err)
			}
			c.held.Mu.Lock()
			n := c.held.Len()
			c.held.Mu.Unlock()
			if n != len(held) {
				t.Fatalf("%d bytes held after HoldAnswer and a write of %d", n, len(held))
			}
			// The client reads while the other write goes out: it may not fit the socket's buffers.
			wrote := make(chan error, 1)
			go func() {
				if _, err := c.Write(tc.next); err != nil {
					wrote <- err
					return
				}
				wrote <- c.Close()
			}()
			b.SetReadDeadline(time.Now().Add(10 * time.Second))
			got, err := io.ReadAll(b)
			if werr := <-wrote; werr != nil {
				t.Fatalf("the other write: %v", werr)
			}
			want := slices.Concat(held, tc.next)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("client read %d bytes beginning %q, %v; want the held answer, then the other write (%d bytes in all), then EOF",
					len(got), got[:min(len(got), len(held)+4)], err, len(want))
			}
		})
	}
}

// Close from another goroutine while the serving one writes its held answer and waits for the
// next request neither deadlocks nor loses the answer.
func TestHoldAnswerCloseDuringRead(t *testing.T) {
	for range 50 {
		a, b := testutil.TCPPair(t, "127.0.0.1")
		c := NewTracker(Options{}).admit(a)
		HoldAnswer(c, true)
		c.Write([]byte("answer"))
		var wg sync.WaitGroup
		wg.Go(func() { c.Read(make([]byte, 8)) })
		wg.Go(func() { c.Close() })
		b.SetReadDeadline(time.Now().Add(10 * time.Second))
		got, err := io.ReadAll(b)
		wg.Wait()
		if err != nil || string(got) != "answer" {
			t.Fatalf("client read %q, %v; want the answer, then EOF", got, err)
		}
		b.Close()
	}
}

// clientPause is how long the client of TestHoldAnswerOneReadPerRequest waits after an answer
// before it sends the next request, so that the server's read after its answer comes before the
// request even when a loaded machine runs the server late: the read then finds nothing, as it does
// for a client across a network. It paces the client; the test measures no time.
const clientPause = time.Millisecond

// TestMain runs the client of TestHoldAnswerOneReadPerRequest in its own process when asked, so
// that its reads are not counted with the server's.
func TestMain(m *testing.M) {
	if addr := os.Getenv("HTTPCONN_CLIENT"); addr != "" {
		n, _ := strconv.Atoi(os.Getenv("HTTPCONN_REQUESTS"))
		c, err := net.Dial("tcp", addr)
		if err != nil {
			os.Exit(2)
		}
		br := bufio.NewReader(c)
		for i := range n {
			if i > 0 {
				time.Sleep(clientPause)
			}
			var resp fasthttp.Response
			if _, err := io.WriteString(c, "GET /x HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
				os.Exit(3)
			}
			if err := resp.Read(br); err != nil || resp.StatusCode() != 200 {
				os.Exit(4)
			}
		}
		// Done: the parent counts its reads now, before it waits for this process (a child's
		// counts join the parent's when it is waited for).
		c.Close()
		os.Stdout.WriteString("done\n")
		io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// With its answers held, a server reads a kept-alive connection once per request: the read that
// writes an answer waits for the next request in the poller, where a plain read after the write
// would find nothing (EAGAIN) first, as the client, another process pausing between requests
// (clientPause), has not sent it yet. Counted by the kernel over a client's requests, without the
// hold as a control.
func TestHoldAnswerOneReadPerRequest(t *testing.T) {
	const requests = 300
	for _, hold := range []bool{true, false} {
		tr := NewTracker(Options{})
		addr := serve(t, tr, func(ctx *fasthttp.RequestCtx) {
			HoldAnswer(ctx.Conn(), hold)
			ctx.WriteString("ok") //nolint:errcheck // test
		})
		before := testutil.ReadCalls(t)
		client := testutil.StartChild(t, "HTTPCONN_CLIENT="+addr, "HTTPCONN_REQUESTS="+strconv.Itoa(requests))
		if line := client.ReadLine(t); line != "done" {
			t.Fatalf("client: %q, want done", line)
		}
		// The server's read of the client's close may come just after the client's "done".
		testutil.WaitFor(t, 10*time.Second, "the server to close the connection", func() bool { return tr.Stats().Open == 0 })
		reads := testutil.ReadCalls(t) - before
		client.Wait(t)
		t.Logf("hold %v: %d requests, %d read system calls", hold, requests, reads)
		// One read per request, one for the client's close, and a few spurious wake-ups.
		if hold && reads > requests+requests/4 {
			t.Errorf("with held answers %d requests made %d read system calls, want about one each", requests, reads)
		}
		// The control: without holding, a read that finds nothing follows most answers. Were it
		// not seen, the count could not tell the two apart.
		if !hold && reads <= requests+requests/4 {
			t.Errorf("without held answers %d requests made %d read system calls, want more than %d (the count sees no EAGAIN reads)", requests, reads, requests+requests/4)
		}
	}
}
