package cache

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"

	"github.com/mogway/mogway/internal/testutil"
)

// fillKeys stores n keys "/dir<i%10>/f<i>?q" in groups "/dir<i%10>/f<i>", every third one on disk
// only (above memory_max_object).
func fillKeys(t *testing.T, c *Cache, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		size := 100
		if i%3 == 0 {
			size = 2000
		}
		group := fmt.Sprintf("/dir%d/f%d", i%10, i)
		var cn counter
		r, _, err := c.Get(context.Background(), Request{Key: group + "?q", Group: group}, cn.fillWith(body(size, byte(i)), size, false))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, r); err != nil {
			t.Fatal(err)
		}
		settle(t, r)
		r.Close()
	}
}

func purgeConfig(t *testing.T) Config {
	return Config{Disk: DiskConfig{Path: t.TempDir()}, MemoryMaxObject: 1024}
}

func entriesOf(c *Cache) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

func TestPurge(t *testing.T) {
	t.Parallel()
	cfg := purgeConfig(t)
	c := newCache(t, cfg, newClock())
	fillKeys(t, c, 30)
	// A second key of the same group.
	var cn counter
	r, _, _ := c.Get(context.Background(), Request{Key: "/dir3/f3?other", Group: "/dir3/f3"}, cn.fillWith(body(10, 1), 10, false))
	io.Copy(io.Discard, r)
	settle(t, r)
	r.Close()

	n, b := c.Purge("/dir3/f3", false)
	if n != 2 || b != 2000+10 {
		t.Errorf("Purge(/dir3/f3) = %d, %d; want 2 entries, 2010 bytes", n, b)
	}
	if _, st, _ := get(t, c, "/dir3/f3?q", cn.fillWith(body(10, 1), 10, false)); st != Miss {
		t.Errorf("Get after purge = %v, want MISS", st)
	}
	if n, _ := c.Purge("/nothing", false); n != 0 {
		t.Errorf("Purge(/nothing) = %d entries, want 0", n)
	}
}

func TestPurgePrefix(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		disk bool
		n    int
	}{
		{"memory", false, 10_000},
		{"disk", true, 10_000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := Config{}
			if tc.disk {
				cfg = purgeConfig(t)
			}
			c, err := New(cfg, nil, WithClock(newClock().Now), func(o *options) { o.noSync = true })
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			n := tc.n
			if testing.Short() {
				n = 1000
			}
			fillKeys(t, c, n)
			countFiles := func() int {
				if !tc.disk {
					return 0
				}
				return len(cacheFiles(t, cfg.Disk.Path))
			}
			if got, want := countFiles(), map[bool]int{true: n}[tc.disk]; got != want {
				t.Fatalf("%d files on disk, want %d", got, want)
			}
			purged, _ := c.PurgePrefix("/dir7/", false)
			if purged != n/10 {
				t.Errorf("PurgePrefix(/dir7/) = %d entries, want %d", purged, n/10)
			}
			if got, want := countFiles(), map[bool]int{true: n - n/10}[tc.disk]; got != want {
				t.Errorf("%d files left on disk, want %d", got, want)
			}
			if got, want := entriesOf(c), n-n/10; got != want {
				t.Errorf("%d entries left, want %d", got, want)
			}
			var cn counter
			if _, st, _ := get(t, c, "/dir7/f7?q", cn.fillWith(body(5, 0), 5, false)); st != Miss {
				t.Errorf("Get(/dir7/f7?q) after PurgePrefix = %v, want MISS", st)
			}
			if _, st, _ := get(t, c, "/dir6/f6?q", cn.fillWith(body(5, 0), 5, false)); st != Hit {
				t.Errorf("Get(/dir6/f6?q) after PurgePrefix(/dir7/) = %v, want HIT", st)
			}

			all, _ := c.PurgeAll(false)
			if all != n-n/10+1 {
				t.Errorf("PurgeAll = %d entries, want %d", all, n-n/10+1)
			}
			if got := countFiles(); got != 0 {
				t.Errorf("%d files left after PurgeAll", got)
			}
			if s := c.Stats(); s.Memory.Bytes != 0 || s.Memory.Entries != 0 || s.Disk.Bytes != 0 || s.Disk.Entries != 0 {
				t.Errorf("Stats() after PurgeAll = %+v; want empty tiers", s)
			}
		})
	}
}

func TestSoftPurge(t *testing.T) {
	t.Parallel()
	clk := newClock()
	cfg := purgeConfig(t)
	c := newCache(t, cfg, clk)
	v := filledV1(t, c, "/k")
	big := &counter{}
	bigBody := body(5000, 1)
	get(t, c, "/big", big.fillWith(bigBody, 1000, false))

	if n, _ := c.PurgePrefix("/", true); n != 2 {
		t.Fatalf("soft PurgePrefix = %d entries, want 2", n)
	}
	v.version.Store(2)
	if got, st, err := get(t, c, "/k", v.fill); err != nil || st != Updating || string(got) != "v1" {
		t.Fatalf("Get after soft purge = %q, %v, %v; want v1, UPDATING", got, st, err)
	}
	waitFor(t, "the refresh after a soft purge", func() bool {
		got, st, _ := get(t, c, "/k", nil)
		return st == Hit && string(got) == "v2"
	})

	// The mark survives a restart.
	c.Close()
	c2 := newCache(t, cfg, clk)
	if _, st, err := get(t, c2, "/big", big.fillWith(bigBody, 1000, false)); err != nil || st != Updating {
		t.Fatalf("Get(/big) after restart = %v, %v; want UPDATING", st, err)
	}
}

func TestPurgeDuringFill(t *testing.T) {
	t.Parallel()
	cfg := purgeConfig(t)
	c := newCache(t, cfg, newClock())
	release := make(chan struct{})
	data := body(4000, 1)
	fill := func(ctx context.Context, prev *Meta, w *Writer) error {
		if err := w.Start(Meta{Status: 200, Size: int64(len(data))}); err != nil {
			return err
		}
		w.Write(data[:100])
		<-release
		_, err := w.Write(data[100:])
		return err
	}
	r, _, err := c.Get(context.Background(), Request{Key: "/k"}, fill)
	if err != nil {
		t.Fatal(err)
	}
	// Too large for memory (memory_max_object 1KiB): the body goes to a tmp-* file in disk.path.
	if tmp := tmpFiles(cfg.Disk.Path); len(tmp) != 1 {
		t.Errorf("temp files while filling = %q, want one", tmp)
	}
	c.Purge("/k", false)
	close(release)
	got, err := io.ReadAll(r)
	settle(t, r)
	r.Close()
	if err != nil || len(got) != len(data) {
		t.Fatalf("reader of a purged fill = %d bytes, %v; want all %d", len(got), err, len(data))
	}
	// Not stored, and its temp file is gone.
	if files := cacheFiles(t, cfg.Disk.Path); len(files) != 0 {
		t.Errorf("files in the cache directory after a purged fill = %q, want none", files)
	}
	var cn counter
	if _, st, _ := get(t, c, "/k", cn.fillWith(data, 1000, false)); st != Miss {
		t.Errorf("Get after a purge during the fill = %v, want MISS (nothing stored)", st)
	}
}

// newLoggedCache returns a Cache that logs (warnings and up) into the returned buffer.
func newLoggedCache(t *testing.T, cfg Config) (*Cache, *testutil.SyncBuffer) {
	t.Helper()
	var lb testutil.SyncBuffer
	log := slog.New(slog.NewTextHandler(&lb, &slog.HandlerOptions{Level: slog.LevelWarn}))
	c, err := New(cfg, log, WithClock(newClock().Now))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c, &lb
}

// Issue 9 item 7: a purge that removes a file between the index lookup of a Get and its open of
// the file logged "stored file unreadable"; it is a plain miss.
func TestPurgeBetweenLookupAndOpenIsAQuietMiss(t *testing.T) {
	t.Parallel()
	c, logs := newLoggedCache(t, Config{Disk: DiskConfig{Path: t.TempDir()}, MemoryMaxObject: 1024})
	var cn counter
	data := body(5000, 3)
	get(t, c, "/d/k", cn.fillWith(data, 1000, false))
	var once sync.Once
	c.beforeOpen = func(key string) { once.Do(func() { c.Purge(key, false) }) }
	got, st, err := get(t, c, "/d/k", cn.fillWith(data, 1000, false))
	if err != nil || st != Miss || !bytes.Equal(got, data) {
		t.Errorf("Get racing a purge = %d bytes, %v, %v; want a MISS with the body", len(got), st, err)
	}
	if cn.n.Load() != 2 {
		t.Errorf("fills = %d, want 2", cn.n.Load())
	}
	if s := logs.String(); s != "" {
		t.Errorf("logged %q, want nothing", s)
	}
}

// TestPurgeWhileReadingIsQuiet reads keys (memory and disk-only ones) while prefix purges remove
// them, and checks that every answer is whole and right and that nothing is logged.
func TestPurgeWhileReadingIsQuiet(t *testing.T) {
	t.Parallel()
	c, logs := newLoggedCache(t, Config{Disk: DiskConfig{Path: t.TempDir()}, MemoryMaxObject: 1024})
	c.noSync = true
	const keys, readers, rounds = 8, 4, 150
	dataOf := func(i int) []byte { return body(100+(i%2)*4000, byte(i)) }
	var wg sync.WaitGroup
	errs := make(chan error, readers)
	for r := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range rounds {
				i := (n + r) % keys
				var cn counter
				key := fmt.Sprintf("/d/%d", i)
				rd, _, err := c.Get(context.Background(), Request{Key: key}, cn.fillWith(dataOf(i), 1000, false))
				if err == nil {
					var got []byte
					got, err = io.ReadAll(rd)
					rd.Close()
					if err == nil && !bytes.Equal(got, dataOf(i)) {
						err = fmt.Errorf("Get(%s) = %d bytes, not the %d stored", key, len(got), len(dataOf(i)))
					}
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	purges := 0
	for running := true; running; purges++ {
		select {
		case <-done:
			running = false
		default:
		}
		c.PurgePrefix("/d/", false)
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if s := logs.String(); s != "" {
		t.Errorf("logged during %d purges:\n%s", purges, s)
	}
}
