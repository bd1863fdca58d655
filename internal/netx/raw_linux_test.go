//go:build linux

package netx

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mogway/mogway/internal/testutil"
)

// rawPair returns a connected client and server, both wrapped by Raw.
func rawPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	c, s := testutil.TCPPair(t, "127.0.0.5")
	client, server = Raw(c), Raw(s)
	if _, ok := client.(*RawTCP); !ok {
		t.Fatalf("Raw(%T) = %T, want *RawTCP", c, client)
	}
	return client, server
}

func TestRawNotTCP(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if got := Raw(a); got != a {
		t.Fatalf("Raw(net.Pipe) = %T, want the pipe itself", got)
	}
}

// A body larger than the socket buffers goes through whole while the reader is slow, so writes
// meet EAGAIN and wait in the poller; two readers at once share the stream without losing a byte.
func TestRawBigTransfer(t *testing.T) {
	c, s := rawPair(t)
	body := bytes.Repeat([]byte("0123456789abcdef"), 1<<18) // 4 MiB
	werr := make(chan error, 1)
	go func() {
		n, err := c.Write(body)
		if err == nil && n != len(body) {
			err = io.ErrShortWrite
		}
		c.(*RawTCP).CloseWrite()
		werr <- err
	}()
	var mu sync.Mutex
	got := make([][]byte, 0)
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			buf := make([]byte, 7000)
			for {
				time.Sleep(50 * time.Microsecond)
				mu.Lock() // chunks in read order: Reads are serialized, so hold the order too
				n, err := s.Read(buf)
				got = append(got, bytes.Clone(buf[:n]))
				mu.Unlock()
				if err == io.EOF {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := <-werr; err != nil {
		t.Fatal(err)
	}
	if sum, want := sha256.Sum256(bytes.Join(got, nil)), sha256.Sum256(body); sum != want {
		t.Fatalf("received %d bytes that differ from the %d sent", len(bytes.Join(got, nil)), len(body))
	}
}

func TestRawErrors(t *testing.T) {
	t.Run("eof", func(t *testing.T) {
		c, s := rawPair(t)
		s.Write([]byte("x"))
		s.Close()
		buf := make([]byte, 8)
		if n, err := c.Read(buf); n != 1 || err != nil {
			t.Fatalf("Read = %d, %v; want 1, nil", n, err)
		}
		if n, err := c.Read(buf); n != 0 || err != io.EOF {
			t.Fatalf("Read after the peer closed = %d, %v; want 0, io.EOF", n, err)
		}
	})
	t.Run("read deadline", func(t *testing.T) {
		c, s := rawPair(t)
		c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		_, err := c.Read(make([]byte, 8))
		var ne net.Error
		if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("Read past its deadline: %v; want a timeout", err)
		}
		c.SetReadDeadline(time.Time{})
		s.Write([]byte("ok"))
		buf := make([]byte, 8)
		if n, err := c.Read(buf); err != nil || string(buf[:n]) != "ok" {
			t.Fatalf("Read after clearing the deadline = %q, %v", buf[:n], err)
		}
	})
	t.Run("write deadline", func(t *testing.T) {
		c, _ := rawPair(t) // the server never reads: the buffers fill
		c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		n, err := c.Write(make([]byte, 64<<20))
		if !errors.Is(err, os.ErrDeadlineExceeded) || n <= 0 || n >= 64<<20 {
			t.Fatalf("Write into full buffers = %d, %v; want part of it and a timeout", n, err)
		}
	})
	t.Run("own close", func(t *testing.T) {
		c, _ := rawPair(t)
		done := make(chan error, 1)
		go func() {
			_, err := c.Read(make([]byte, 8))
			done <- err
		}()
		time.Sleep(20 * time.Millisecond)
		c.Close()
		if err := <-done; !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Read blocked when the connection closed: %v; want net.ErrClosed", err)
		}
		if _, err := c.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Write after Close: %v; want net.ErrClosed", err)
		}
	})
	t.Run("reset", func(t *testing.T) {
		c, s := rawPair(t)
		s.(*RawTCP).SetLinger(0)
		s.Close() // RST
		time.Sleep(20 * time.Millisecond)
		_, err := c.Read(make([]byte, 8))
		var ne *net.OpError
		if !errors.Is(err, syscall.ECONNRESET) || !errors.As(err, &ne) || ne.Op != "read" {
			t.Fatalf("Read after a reset: %v; want a read OpError with ECONNRESET", err)
		}
		_, err = c.Write([]byte("x"))
		if !errors.Is(err, syscall.EPIPE) && !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("Write after a reset: %v; want EPIPE or ECONNRESET", err)
		}
	})
}

// ReadFrom is the wrapped *net.TCPConn's, so a file still goes out with sendfile(2).
func TestRawReadFromFile(t *testing.T) {
	c, s := rawPair(t)
	path := filepath.Join(t.TempDir(), "f")
	body := bytes.Repeat([]byte("mogway"), 100_000)
	if err := os.WriteFile(path, body, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	go func() {
		c.(io.ReaderFrom).ReadFrom(f)
		c.Close()
	}()
	got, err := io.ReadAll(s)
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("read %d bytes, %v; want the file's %d", len(got), err, len(body))
	}
}

func TestRawAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race build reads and writes through the syscall package")
	}
	c, s := rawPair(t)
	msg, buf := []byte("ping"), make([]byte, 16)
	allocs := testing.AllocsPerRun(200, func() {
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(s, buf[:len(msg)]); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("a Write and a Read allocate %.1f times, want 0", allocs)
	}
}
