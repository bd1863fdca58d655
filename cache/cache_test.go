package cache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mogway/mogway/internal/conf"
	"github.com/mogway/mogway/internal/testutil"
)

// clock is a settable clock for WithClock.
type clock = testutil.Clock

func newClock() *clock { return testutil.NewClock() }

// newCache returns a Cache closed at the end of the test.
func newCache(t testing.TB, cfg Config, clk *clock) *Cache {
	t.Helper()
	c, err := New(cfg, nil, WithClock(clk.Now))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// diskConfig is a Config with a disk tier in a fresh temp directory.
func diskConfig(t testing.TB) Config {
	return Config{Disk: DiskConfig{Path: t.TempDir()}}
}

// tierConfig is a memory-only Config, or diskConfig when disk is set.
func tierConfig(t testing.TB, disk bool) Config {
	if disk {
		return diskConfig(t)
	}
	return Config{}
}

// readResult is what one reader of readConcurrently got: its body, or the error of Get or Read.
type readResult struct {
	body []byte
	err  error
}

// readConcurrently makes n concurrent Gets of key with fill, closes release once every Get has
// returned (so that all readers attach while the fill is still writing), and returns what each read.
func readConcurrently(c *Cache, key string, fill FillFunc, n int, release chan struct{}) []readResult {
	var attached, done sync.WaitGroup
	attached.Add(n)
	done.Add(n)
	out := make([]readResult, n)
	for i := range out {
		go func() {
			defer done.Done()
			r, _, err := c.Get(context.Background(), Request{Key: key}, fill)
			attached.Done()
			if err != nil {
				out[i].err = err
				return
			}
			defer r.Close()
			out[i].body, out[i].err = io.ReadAll(r)
		}()
	}
	attached.Wait()
	close(release)
	done.Wait()
	return out
}

// body returns n deterministic bytes that differ with seed.
func body(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) ^ byte(i>>8) ^ seed
	}
	return b
}

// counter counts fill calls.
type counter struct{ n atomic.Int64 }

// fillWith returns a fill that serves data in chunks with status 200, declaring its size unless
// unknownSize.
func (cn *counter) fillWith(data []byte, chunk int, unknownSize bool) FillFunc {
	return func(ctx context.Context, prev *Meta, w *Writer) error {
		cn.n.Add(1)
		size := int64(len(data))
		if unknownSize {
			size = -1
		}
		if err := w.Start(Meta{Status: 200, Size: size, ETag: `"v1"`, Header: []HeaderField{{"Content-Type", "application/octet-stream"}}}); err != nil {
			return err
		}
		for off := 0; off < len(data); off += chunk {
			if _, err := w.Write(data[off:min(off+chunk, len(data))]); err != nil {
				return err
			}
		}
		return nil
	}
}

// get does a Get and reads the whole body.
func get(t testing.TB, c *Cache, key string, fill FillFunc) ([]byte, Status, error) {
	t.Helper()
	r, st, err := c.Get(context.Background(), Request{Key: key}, fill)
	if err != nil {
		return nil, st, err
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	settle(t, r)
	return b, st, err
}

// storedHit stores data under key with a fill of 4 KiB writes, then opens it again as a HIT; the Reader
// is closed at the end of the test.
func storedHit(t testing.TB, c *Cache, key string, data []byte) *Reader {
	t.Helper()
	var cn counter
	get(t, c, key, cn.fillWith(data, 4096, false))
	r, st, err := c.Get(context.Background(), Request{Key: key}, nil)
	if err != nil || st != Hit {
		t.Fatalf("Get = %v, %v", st, err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// startHeld starts a fill of size bytes (-1: unknown), writes head and waits for release, so that
// every reader attaches while the body is still coming.
func startHeld(w *Writer, size int64, head []byte, release <-chan struct{}) error {
	if err := w.Start(Meta{Status: 200, Size: size}); err != nil {
		return err
	}
	if _, err := w.Write(head); err != nil {
		return err
	}
	<-release
	return nil
}

// settle waits until the fill r reads from (if any) is stored or dropped: readers see the end of
// the body before the entry is committed.
func settle(t testing.TB, r *Reader) {
	t.Helper()
	if fl := r.fl; fl != nil {
		fl.mu.Lock()
		for !fl.done {
			fl.cond.Wait() // finishLocked broadcasts
		}
		fl.mu.Unlock()
	}
}

// tmpFiles lists the temp files (tmp-*) of the disk tier in root; unreadable is none.
func tmpFiles(root string) []string {
	names, _ := filepath.Glob(filepath.Join(root, "tmp-*"))
	return names
}

// waitFor polls cond until it holds, failing the test after 20s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	testutil.WaitFor(t, 20*time.Second, what, cond)
}

func TestMissThenHit(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		cfg  func(t *testing.T) Config
		size int
	}{
		{"memory", func(*testing.T) Config { return Config{} }, 1000},
		{"memory-empty", func(*testing.T) Config { return Config{} }, 0},
		{"disk", func(t *testing.T) Config { return diskConfig(t) }, 3 << 20},
		{"spool", func(*testing.T) Config { return Config{} }, 3 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := newCache(t, tc.cfg(t), newClock())
			data := body(tc.size, 1)
			var cn counter
			got, st, err := get(t, c, "/a?x=1", cn.fillWith(data, 4096, false))
			if err != nil || st != Miss || !bytes.Equal(got, data) {
				t.Fatalf("first Get = %d bytes, %v, %v; want %d bytes, MISS", len(got), st, err, len(data))
			}
			got, st, err = get(t, c, "/a?x=1", cn.fillWith(data, 4096, false))
			wantSt := Hit
			if tc.name == "spool" {
				wantSt = Miss // too large for memory, and no disk tier
			}
			if err != nil || st != wantSt || !bytes.Equal(got, data) {
				t.Fatalf("second Get = %d bytes, %v, %v; want %d bytes, %v", len(got), st, err, len(data), wantSt)
			}
			if want := int64(1); wantSt == Hit && cn.n.Load() != want {
				t.Errorf("fill called %d times, want %d", cn.n.Load(), want)
			}
		})
	}
}

func TestMetaRoundTrip(t *testing.T) {
	t.Parallel()
	clk := newClock()
	c := newCache(t, Config{}, clk)
	var cn counter
	r, _, err := c.Get(context.Background(), Request{Key: "k"}, cn.fillWith(body(10, 0), 10, false))
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	r, st, err := c.Get(context.Background(), Request{Key: "k"}, nil)
	if err != nil || st != Hit {
		t.Fatalf("Get = %v, %v; want HIT", st, err)
	}
	defer r.Close()
	m := r.Meta()
	if m.Status != 200 || m.Size != 10 || m.ETag != `"v1"` || len(m.Header) != 1 || m.Header[0].Value != "application/octet-stream" {
		t.Errorf("Meta() = %+v", m)
	}
	if !m.StoredAt.Equal(clk.Now()) || !m.ExpiresAt.Equal(clk.Now().Add(10*time.Minute)) {
		t.Errorf("StoredAt, ExpiresAt = %v, %v; want now and now+10m", m.StoredAt, m.ExpiresAt)
	}
	if r.Size() != 10 {
		t.Errorf("Size() = %d, want 10", r.Size())
	}
}

func TestSingleFlight(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		disk    bool
		size    int
		unknown bool
	}{
		{"memory-small", false, 100 << 10, false},
		{"memory-unknown-size", false, 200 << 10, true},
		{"spool-large", false, 5 << 20, false},
		{"disk-large", true, 5 << 20, false},
		{"disk-unknown-size", true, 3<<20 + 17, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := newCache(t, tierConfig(t, tc.disk), newClock())
			data := body(tc.size, 2)
			release := make(chan struct{})
			var calls atomic.Int64
			fill := func(ctx context.Context, prev *Meta, w *Writer) error {
				calls.Add(1)
				size := int64(len(data))
				if tc.unknown {
					size = -1
				}
				if err := startHeld(w, size, data[:1000], release); err != nil {
					return err
				}
				for off := 1000; off < len(data); off += 32 << 10 {
					if _, err := w.Write(data[off:min(off+32<<10, len(data))]); err != nil {
						return err
					}
				}
				return nil
			}
			for _, res := range readConcurrently(c, "/big", fill, 50, release) {
				if res.err != nil {
					t.Error(res.err)
				} else if !bytes.Equal(res.body, data) {
					t.Errorf("reader got %d bytes that differ from the %d written", len(res.body), len(data))
				}
			}
			if got := calls.Load(); got != 1 {
				t.Errorf("fill called %d times, want 1", got)
			}
		})
	}
}

func TestFailedFill(t *testing.T) {
	t.Parallel()
	boom := errors.New("upstream died")
	for _, tc := range []struct {
		name    string
		disk    bool
		size    int
		ret     error
		wantErr error
	}{
		{"error-memory", false, 1000, boom, boom},
		{"error-disk", true, 2 << 20, boom, boom},
		{"short-memory", false, 1000, nil, ErrShortFill},
		{"short-disk", true, 2 << 20, nil, io.ErrUnexpectedEOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := tierConfig(t, tc.disk)
			c := newCache(t, cfg, newClock())
			data := body(tc.size, 3)
			release := make(chan struct{})
			var calls atomic.Int64
			var tmpDuring []string // the temp files of the disk tier while the fill wrote
			fill := func(ctx context.Context, prev *Meta, w *Writer) error {
				calls.Add(1)
				if err := startHeld(w, int64(len(data)), data[:len(data)/2], release); err != nil {
					return err
				}
				if tc.disk {
					tmpDuring = tmpFiles(cfg.Disk.Path)
				}
				return tc.ret
			}
			for _, res := range readConcurrently(c, "k", fill, 5, release) {
				if !errors.Is(res.err, tc.wantErr) {
					t.Errorf("reader error = %v, want %v", res.err, tc.wantErr)
				}
			}
			if calls.Load() != 1 {
				t.Errorf("fill called %d times, want 1", calls.Load())
			}
			s := c.Stats()
			if s.FillErrors != 1 || s.Fills != 0 || s.Memory.Entries != 0 || s.Disk.Entries != 0 {
				t.Errorf("Stats() = %+v; want 1 fill error and no entries", s)
			}
			waitFor(t, "fill buffers released", func() bool { return c.Stats().Memory.Bytes == 0 })
			if tc.disk {
				// The body went to a tmp-* file in disk.path; the failure leaves nothing behind.
				if len(tmpDuring) != 1 {
					t.Errorf("temp files while filling = %q, want one", tmpDuring)
				}
				waitFor(t, "the failed fill's temp file removed", func() bool { return len(cacheFiles(t, cfg.Disk.Path)) == 0 })
			}
			var cn counter
			if got, st, err := get(t, c, "k", cn.fillWith(data, 1<<16, false)); err != nil || st != Miss || !bytes.Equal(got, data) {
				t.Errorf("Get after failure = %d bytes, %v, %v; want a MISS with %d bytes", len(got), st, err, len(data))
			}
		})
	}
}

func TestFillErrorBeforeStart(t *testing.T) {
	t.Parallel()
	c := newCache(t, Config{}, newClock())
	boom := errors.New("no upstream")
	_, _, err := c.Get(context.Background(), Request{Key: "k"}, func(ctx context.Context, prev *Meta, w *Writer) error { return boom })
	if !errors.Is(err, boom) {
		t.Errorf("Get = %v, want %v", err, boom)
	}
	_, _, err = c.Get(context.Background(), Request{Key: "k"}, func(ctx context.Context, prev *Meta, w *Writer) error { return nil })
	if !errors.Is(err, ErrNotStarted) {
		t.Errorf("Get with a fill that never starts = %v, want %v", err, ErrNotStarted)
	}
	_, _, err = c.Get(context.Background(), Request{Key: "k"}, func(ctx context.Context, prev *Meta, w *Writer) error { panic("bug") })
	if err == nil {
		t.Errorf("Get with a panicking fill = nil error")
	}
}

func TestTooLong(t *testing.T) {
	t.Parallel()
	c := newCache(t, Config{}, newClock())
	var werr error
	_, _, err := get(t, c, "k", func(ctx context.Context, prev *Meta, w *Writer) error {
		if err := w.Start(Meta{Status: 200, Size: 3}); err != nil {
			return err
		}
		_, werr = w.Write([]byte("abcd"))
		return werr
	})
	if !errors.Is(werr, ErrTooLong) || !errors.Is(err, ErrTooLong) {
		t.Errorf("Write past size = %v, reader error %v; want %v", werr, err, ErrTooLong)
	}
}

func TestNotCacheableStatus(t *testing.T) {
	t.Parallel()
	c := newCache(t, Config{}, newClock())
	var calls atomic.Int64
	fill := func(ctx context.Context, prev *Meta, w *Writer) error {
		calls.Add(1)
		if err := w.Start(Meta{Status: 500, Size: 2}); err != nil {
			return err
		}
		_, err := w.Write([]byte("no"))
		return err
	}
	for i := 0; i < 2; i++ {
		if got, st, err := get(t, c, "k", fill); err != nil || st != Miss || string(got) != "no" {
			t.Fatalf("Get = %q, %v, %v; want \"no\", MISS", got, st, err)
		}
	}
	if calls.Load() != 2 {
		t.Errorf("fill called %d times for an uncacheable status, want 2", calls.Load())
	}
}

func TestValidAny(t *testing.T) {
	t.Parallel()
	clk := newClock()
	c := newCache(t, Config{Valid: map[string]conf.Duration{"any": conf.Duration(time.Minute), "200": conf.Duration(time.Hour)}}, clk)
	fill := func(status int) FillFunc {
		return func(ctx context.Context, prev *Meta, w *Writer) error { return w.Start(Meta{Status: status}) }
	}
	for _, tc := range []struct {
		status int
		want   time.Duration
	}{{200, time.Hour}, {503, time.Minute}} {
		r, _, err := c.Get(context.Background(), Request{Key: fmt.Sprint(tc.status)}, fill(tc.status))
		if err != nil {
			t.Fatal(err)
		}
		if got := r.Meta().ExpiresAt.Sub(r.Meta().StoredAt); got != tc.want {
			t.Errorf("lifetime of status %d = %v, want %v", tc.status, got, tc.want)
		}
		r.Close()
	}
}

func TestLockTimeoutAndContext(t *testing.T) {
	t.Parallel()
	c := newCache(t, Config{LockTimeout: conf.Duration(time.Millisecond)}, newClock())
	hold := make(chan struct{})
	defer close(hold)
	slow := func(ctx context.Context, prev *Meta, w *Writer) error {
		<-hold
		return w.Start(Meta{Status: 200})
	}
	if _, _, err := c.Get(context.Background(), Request{Key: "k"}, slow); !errors.Is(err, ErrLockTimeout) {
		t.Errorf("Get = %v, want %v", err, ErrLockTimeout)
	}
	c2 := newCache(t, Config{}, newClock())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := c2.Get(ctx, Request{Key: "k"}, slow); !errors.Is(err, context.Canceled) {
		t.Errorf("Get with a cancelled context = %v, want %v", err, context.Canceled)
	}
}

func TestAbandonedLargeFill(t *testing.T) {
	t.Parallel()
	c := newCache(t, Config{}, newClock())
	cancelled := make(chan error, 1)
	fill := func(ctx context.Context, prev *Meta, w *Writer) error {
		if err := w.Start(Meta{Status: 200, Size: 1 << 30}); err != nil {
			return err
		}
		chunk := make([]byte, 64<<10)
		for i := 0; i < (1<<30)/len(chunk); i++ {
			if _, err := w.Write(chunk); err != nil {
				cancelled <- err
				return err
			}
		}
		cancelled <- nil
		return nil
	}
	r, _, err := c.Get(context.Background(), Request{Key: "huge"}, fill)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Read(make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	r.Close()
	if err := <-cancelled; !errors.Is(err, ErrAbandoned) {
		t.Errorf("Write after every reader left = %v, want %v", err, ErrAbandoned)
	}
}

// When every reader of a fill has left, a remainder of at most 8 MiB is still fetched and stored; a
// larger one, or one of unknown length however small, is cancelled.
func TestAbandonedFillRemainder(t *testing.T) {
	t.Parallel()
	const head = 64 << 10 // read by the only client before it leaves
	for _, tc := range []struct {
		name       string
		disk       bool
		size       int64 // declared; -1 for unknown
		total      int   // bytes the fill would write
		wantStored bool
	}{
		{"8MiB-left", true, head + abandonBytes, head + abandonBytes, true},
		{"8MiB+1-left", true, head + abandonBytes + 1, head + abandonBytes + 1, false},
		{"small-memory", false, 200 << 10, 200 << 10, true},
		{"unknown-length", false, -1, 200 << 10, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := newCache(t, tierConfig(t, tc.disk), newClock())
			data := body(tc.total, 9)
			left := make(chan struct{}) // closed once the client has gone
			result := make(chan error, 1)
			fill := func(ctx context.Context, prev *Meta, w *Writer) error {
				err := func() error {
					if err := w.Start(Meta{Status: 200, Size: tc.size}); err != nil {
						return err
					}
					if _, err := w.Write(data[:head]); err != nil {
						return err
					}
					<-left
					for off := head; off < len(data); off += 64 << 10 {
						if _, err := w.Write(data[off:min(off+64<<10, len(data))]); err != nil {
							return err
						}
					}
					return nil
				}()
				result <- err
				return err
			}
			r, _, err := c.Get(context.Background(), Request{Key: "k"}, fill)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(r, make([]byte, head)); err != nil {
				t.Fatal(err)
			}
			r.Close()
			close(left)
			err = <-result
			if !tc.wantStored {
				if !errors.Is(err, ErrAbandoned) {
					t.Fatalf("fill after its client left = %v, want %v", err, ErrAbandoned)
				}
				waitFor(t, "the fill to fail", func() bool { return c.Stats().FillErrors == 1 })
				var cn counter
				if _, st, err := get(t, c, "k", cn.fillWith(data, 1<<16, false)); err != nil || st != Miss {
					t.Errorf("Get after a cancelled fill = %v, %v; want MISS", st, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("fill after its client left = %v, want it to complete", err)
			}
			waitFor(t, "the fill to be stored", func() bool { return c.Stats().Fills == 1 })
			var cn counter
			got, st, err := get(t, c, "k", cn.fillWith(data, 1<<16, false))
			if err != nil || st != Hit || !bytes.Equal(got, data) || cn.n.Load() != 0 {
				t.Errorf("Get after the abandoned fill = %d bytes, %v, %v (%d fills); want a HIT with the %d bytes",
					len(got), st, err, cn.n.Load(), len(data))
			}
		})
	}
}

func TestMemoryBound(t *testing.T) {
	t.Parallel()
	const limit = 2 << 20
	for _, disk := range []bool{false, true} {
		t.Run(fmt.Sprint("disk=", disk), func(t *testing.T) {
			t.Parallel()
			cfg := Config{Memory: limit, MemoryMaxObject: 512 << 10}
			if disk {
				cfg.Disk.Path = t.TempDir()
			}
			c := newCache(t, cfg, newClock())
			var over atomic.Int64
			check := func() {
				if b := c.Stats().Memory.Bytes; b > limit {
					over.Store(b)
				}
			}
			fill := func(data []byte, unknown bool) FillFunc {
				return func(ctx context.Context, prev *Meta, w *Writer) error {
					size := int64(len(data))
					if unknown {
						size = -1
					}
					if err := w.Start(Meta{Status: 200, Size: size}); err != nil {
						return err
					}
					for off := 0; off < len(data); off += 16 << 10 {
						if _, err := w.Write(data[off:min(off+16<<10, len(data))]); err != nil {
							return err
						}
						check()
					}
					return nil
				}
			}
			var wg sync.WaitGroup
			for i := 0; i < 12; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					data := body((i+1)*300<<10, byte(i))
					key := fmt.Sprint("/obj", i)
					for round := 0; round < 2; round++ {
						got, _, err := get(t, c, key, fill(data, i%2 == 0))
						if err != nil || !bytes.Equal(got, data) {
							t.Errorf("Get(%q) = %d bytes, %v; want %d bytes", key, len(got), err, len(data))
						}
						check()
					}
				}()
			}
			wg.Wait()
			if b := over.Load(); b != 0 {
				t.Errorf("memory tier held %d bytes, over its %d bound", b, limit)
			}
			if s := c.Stats(); s.Memory.Bytes > limit {
				t.Errorf("Stats().Memory = %+v; want at most %d bytes", s.Memory, limit)
			}
			// The small object is served from the cache now that the fills are over.
			waitFor(t, "fills to finish", func() bool { return idle(c) })
			if _, st, err := get(t, c, "/obj0", fill(body(300<<10, 0), false)); err != nil || (disk && st != Hit) {
				t.Errorf("Get(/obj0) after the fills = %v, %v; want HIT", st, err)
			}
		})
	}
}

func TestStatusString(t *testing.T) {
	for st, want := range map[Status]string{Miss: "MISS", Hit: "HIT", Expired: "EXPIRED", Stale: "STALE",
		Updating: "UPDATING", Revalidated: "REVALIDATED", Bypass: "BYPASS", 0: "", 99: "UNKNOWN"} {
		if got := st.String(); got != want {
			t.Errorf("Status(%d).String() = %q, want %q", st, got, want)
		}
	}
}

func TestGetAfterClose(t *testing.T) {
	c, err := New(Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if _, _, err := c.Get(context.Background(), Request{Key: "k"}, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Get after Close = %v, want %v", err, ErrClosed)
	}
}

func TestMemoryBoundManyEmptyEntries(t *testing.T) {
	t.Parallel()
	const limit = 64 << 10
	c := newCache(t, Config{Memory: limit, MemoryMaxObject: 1024}, newClock())
	empty := func(ctx context.Context, prev *Meta, w *Writer) error { return w.Start(Meta{Status: 200}) }
	for i := 0; i < 2000; i++ {
		if _, _, err := get(t, c, fmt.Sprint("/empty/", i), empty); err != nil {
			t.Fatal(err)
		}
	}
	s := c.Stats().Memory
	if s.Bytes > limit || s.Entries >= 2000 || s.Entries == 0 || s.Evictions == 0 {
		t.Errorf("Stats().Memory = %+v; want empty entries charged and evicted within %d bytes", s, limit)
	}
	if n := int64(entriesOf(c)); n != s.Entries {
		t.Errorf("index holds %d entries, memory tier %d", n, s.Entries)
	}
}

func TestReaderLeavingDoesNotStopOthers(t *testing.T) {
	t.Parallel()
	c := newCache(t, diskConfig(t), newClock())
	data := body(20<<20, 6) // well above abandonBytes
	release := make(chan struct{})
	fill := func(ctx context.Context, prev *Meta, w *Writer) error {
		if err := w.Start(Meta{Status: 200, Size: int64(len(data))}); err != nil {
			return err
		}
		<-release
		for off := 0; off < len(data); off += 1 << 20 {
			if _, err := w.Write(data[off : off+1<<20]); err != nil {
				return err
			}
		}
		return nil
	}
	leaver, _, err := c.Get(context.Background(), Request{Key: "k"}, fill)
	if err != nil {
		t.Fatal(err)
	}
	stayer, _, err := c.Get(context.Background(), Request{Key: "k"}, fill)
	if err != nil {
		t.Fatal(err)
	}
	defer stayer.Close()
	close(release)
	leaver.Read(make([]byte, 10))
	leaver.Close()
	got, err := io.ReadAll(stayer)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("remaining reader got %d bytes, %v; want all %d", len(got), err, len(data))
	}
	waitFor(t, "the fill to be stored", func() bool { return c.Stats().Fills == 1 })
}

func TestCloseCancelsFills(t *testing.T) {
	t.Parallel()
	c, err := New(Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	fill := func(ctx context.Context, prev *Meta, w *Writer) error {
		if err := w.Start(Meta{Status: 200, Size: 100}); err != nil {
			return err
		}
		w.Write(make([]byte, 10))
		<-ctx.Done()
		_, err := w.Write(make([]byte, 10))
		return err
	}
	r, _, err := c.Get(context.Background(), Request{Key: "k"}, fill)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(r); !errors.Is(err, context.Canceled) {
		t.Errorf("reading a fill cancelled by Close = %v, want %v", err, context.Canceled)
	}
}
