package cache

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"testing"

	"github.com/mogway/mogway/internal/testutil"
)

// writeToConn writes r after a buffered prefix to a TCP connection through a bufio.Writer, as
// fasthttp writes a response head and then its body stream, and returns what the peer received.
func writeToConn(t *testing.T, r *Reader) ([]byte, int64, error) {
	t.Helper()
	client, server := testutil.TCPPair(t, "127.0.0.1")
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(client)
		got <- b
	}()
	w := bufio.NewWriterSize(server, 4096)
	w.WriteString("head\n")
	n, err := r.WriteTo(w)
	if ferr := w.Flush(); err == nil {
		err = ferr
	}
	server.Close()
	return <-got, n, err
}

func TestReaderWriteTo(t *testing.T) {
	t.Parallel()
	data := body(300_000, 5)
	for _, tc := range []struct {
		name string
		cfg  func(t *testing.T) Config
		skip int64 // Seek before WriteTo
	}{
		{"memory", func(t *testing.T) Config { return Config{} }, 0},
		{"memory after seek", func(t *testing.T) Config { return Config{} }, 1000},
		{"disk", func(t *testing.T) Config {
			return Config{Disk: DiskConfig{Path: t.TempDir()}, MemoryMaxObject: 1024}
		}, 0},
		{"disk after seek", func(t *testing.T) Config {
			return Config{Disk: DiskConfig{Path: t.TempDir()}, MemoryMaxObject: 1024}
		}, 123_457},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCache(t, tc.cfg(t), newClock())
			r := storedHit(t, c, "k", data)
			if _, err := r.Seek(tc.skip, io.SeekStart); err != nil {
				t.Fatal(err)
			}
			got, n, err := writeToConn(t, r)
			want := append([]byte("head\n"), data[tc.skip:]...)
			if err != nil || n != int64(len(data))-tc.skip || !bytes.Equal(got, want) {
				t.Fatalf("WriteTo = %d, %v; peer got %d bytes (equal %v), want %d", n, err, len(got), bytes.Equal(got, want), len(want))
			}
			if k, err := r.Read(make([]byte, 10)); k != 0 || err != io.EOF {
				t.Errorf("Read after WriteTo = %d, %v; want 0, EOF", k, err)
			}
		})
	}
}

// A stored file cut short under an open Reader ends WriteTo with io.ErrUnexpectedEOF, never a short
// body with no error.
func TestReaderWriteToFileCutShort(t *testing.T) {
	t.Parallel()
	cfg := Config{Disk: DiskConfig{Path: t.TempDir()}, MemoryMaxObject: 1024}
	c := newCache(t, cfg, newClock())
	data := body(200_000, 6)
	r := storedHit(t, c, "k", data)
	if err := os.Truncate(r.file.Name(), r.base+100_000); err != nil {
		t.Fatal(err)
	}
	got, n, err := writeToConn(t, r)
	if !errors.Is(err, io.ErrUnexpectedEOF) || n != 100_000 {
		t.Fatalf("WriteTo of a cut file = %d, %v; want 100000, ErrUnexpectedEOF", n, err)
	}
	if len(got) != 5+100_000 {
		t.Errorf("peer got %d bytes, want %d", len(got), 5+100_000)
	}
}

// A Reader on a fill in progress copies through Read and waits for the fill.
func TestReaderWriteToFill(t *testing.T) {
	t.Parallel()
	c := newCache(t, Config{}, newClock())
	data := body(100_000, 7)
	release := make(chan struct{})
	fill := func(ctx context.Context, prev *Meta, w *Writer) error {
		if err := w.Start(Meta{Status: 200, Size: int64(len(data))}); err != nil {
			return err
		}
		w.Write(data[:50_000])
		<-release
		_, err := w.Write(data[50_000:])
		return err
	}
	r, st, err := c.Get(context.Background(), Request{Key: "k"}, fill)
	if err != nil || st != Miss {
		t.Fatalf("Get = %v, %v", st, err)
	}
	defer r.Close()
	close(release)
	got, n, err := writeToConn(t, r)
	if err != nil || n != int64(len(data)) || !bytes.Equal(got[5:], data) {
		t.Fatalf("WriteTo = %d, %v; peer got %d bytes", n, err, len(got))
	}
}
