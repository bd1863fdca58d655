package cache

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mogway/mogway/internal/conf"
)

// cacheFiles lists the files under root, relative to it.
func cacheFiles(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(root, p)
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestDiskLayout(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		levels, want string
	}{
		// md5("/a") = 0639767f3e9eaad729b54037a7e2abf5; nginx takes the levels from the end.
		{"1:2", "5/bf/"},
		{"2", "f5/"},
		{"1:1:2", "5/f/ab/"},
	} {
		root := t.TempDir()
		d, err := openDisk(DiskConfig{Path: root, Levels: tc.levels})
		if err != nil {
			t.Fatal(err)
		}
		got, _ := filepath.Rel(root, d.pathFor("/a"))
		if want := tc.want + "0639767f3e9eaad729b54037a7e2abf5"; filepath.ToSlash(got) != want {
			t.Errorf("levels %q: pathFor(\"/a\") = %q, want %q", tc.levels, got, want)
		}
	}
}

func TestDiskSurvivesRestart(t *testing.T) {
	t.Parallel()
	clk := newClock()
	cfg := diskConfig(t)
	c := newCache(t, cfg, clk)
	want := map[string][]byte{}
	for i := 0; i < 20; i++ {
		key := fmt.Sprintf("/file/%d?v=%d", i, i)
		data := body(i*50_000, byte(i))
		want[key] = data
		var cn counter
		if _, st, err := get(t, c, key, cn.fillWith(data, 8192, i%3 == 0)); err != nil || st != Miss {
			t.Fatalf("Get(%q) = %v, %v; want MISS", key, st, err)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}

	c2 := newCache(t, cfg, clk)
	if s := c2.Stats(); s.Disk.Entries != 20 {
		t.Fatalf("after restart Stats().Disk.Entries = %d, want 20", s.Disk.Entries)
	}
	fail := func(ctx context.Context, prev *Meta, w *Writer) error { return fmt.Errorf("fill called after restart") }
	for key, data := range want {
		r, st, err := c2.Get(context.Background(), Request{Key: key}, fail)
		if err != nil || st != Hit {
			t.Fatalf("Get(%q) after restart = %v, %v; want HIT", key, st, err)
		}
		if m := r.Meta(); m.Status != 200 || m.Size != int64(len(data)) || m.Header[0].Name != "Content-Type" {
			t.Errorf("Get(%q) after restart: Meta = %+v", key, m)
		}
		buf := make([]byte, len(data))
		if n, err := r.ReadAt(buf, 0); n != len(data) || err != nil || !bytes.Equal(buf, data) {
			t.Errorf("Get(%q) after restart: ReadAt = %d, %v; want the %d stored bytes", key, n, err, len(data))
		}
		r.Close()
	}
	// Expiry survives too.
	clk.Advance(11 * time.Minute)
	var cn counter
	if _, st, err := get(t, c2, "/file/3?v=3", cn.fillWith(want["/file/3?v=3"], 8192, false)); err != nil || st != Expired {
		t.Errorf("Get after expiry = %v, %v; want EXPIRED", st, err)
	}
}

func TestDiskSeekAndRange(t *testing.T) {
	t.Parallel()
	c := newCache(t, Config{Disk: DiskConfig{Path: t.TempDir()}, MemoryMaxObject: 1024}, newClock())
	data := body(100_000, 9)
	r := storedHit(t, c, "k", data)
	if pos, err := r.Seek(-10, 2); err != nil || pos != 99_990 {
		t.Fatalf("Seek(-10, end) = %d, %v", pos, err)
	}
	buf := make([]byte, 20)
	n, _ := r.Read(buf)
	if n != 10 || !bytes.Equal(buf[:n], data[99_990:]) {
		t.Errorf("Read at the end = %d bytes, want the last 10", n)
	}
}

func TestDiskMinUses(t *testing.T) {
	t.Parallel()
	cfg := Config{Disk: DiskConfig{Path: t.TempDir(), MinUses: 3}, MemoryMaxObject: 1024}
	c := newCache(t, cfg, newClock())
	data := body(10_000, 4) // above memory_max_object: disk or nothing
	var cn counter
	for i := 1; i <= 4; i++ {
		_, st, err := get(t, c, "k", cn.fillWith(data, 1000, false))
		want := Miss
		if i == 4 {
			want = Hit
		}
		if err != nil || st != want {
			t.Fatalf("request %d: Get = %v, %v; want %v", i, st, err, want)
		}
	}
	if n := cn.n.Load(); n != 3 {
		t.Errorf("fill called %d times with min_uses 3, want 3", n)
	}
}

func TestDiskMaxSize(t *testing.T) {
	t.Parallel()
	const maxSize = 1 << 20
	cfg := Config{Disk: DiskConfig{Path: t.TempDir(), MaxSize: maxSize}, MemoryMaxObject: 1024}
	c := newCache(t, cfg, newClock())
	for i := 0; i < 30; i++ {
		var cn counter
		if _, _, err := get(t, c, fmt.Sprint("k", i), cn.fillWith(body(100_000, byte(i)), 10_000, false)); err != nil {
			t.Fatal(err)
		}
		if s := c.Stats().Disk; s.Bytes > maxSize {
			t.Fatalf("after %d fills Stats().Disk.Bytes = %d, over max_size %d", i+1, s.Bytes, maxSize)
		}
	}
	s := c.Stats().Disk
	var onDisk int64
	files := cacheFiles(t, cfg.Disk.Path)
	for _, f := range files {
		fi, err := os.Stat(filepath.Join(cfg.Disk.Path, f))
		if err != nil {
			t.Fatal(err)
		}
		onDisk += fi.Size()
	}
	if onDisk != s.Bytes || onDisk > maxSize || int64(len(files)) != s.Entries || s.Evictions != 30-s.Entries {
		t.Errorf("disk holds %d bytes in %d files; Stats().Disk = %+v; want them equal and within %d", onDisk, len(files), s, maxSize)
	}
	// The most recent entries are the ones kept.
	var cn counter
	if _, st, _ := get(t, c, "k29", cn.fillWith(body(100_000, 29), 10_000, false)); st != Hit {
		t.Errorf("Get(k29) = %v, want HIT", st)
	}
	if _, st, _ := get(t, c, "k0", cn.fillWith(body(100_000, 0), 10_000, false)); st != Miss {
		t.Errorf("Get(k0) = %v, want MISS (evicted)", st)
	}
}

func TestInactive(t *testing.T) {
	t.Parallel()
	clk := newClock()
	cfg := Config{Disk: DiskConfig{Path: t.TempDir(), Inactive: conf.Duration(time.Hour)},
		Valid: map[string]conf.Duration{"200": conf.Duration(24 * time.Hour)}}
	c := newCache(t, cfg, clk)
	var cn counter
	get(t, c, "old", cn.fillWith(body(100, 1), 100, false))
	get(t, c, "big-old", cn.fillWith(body(2<<20, 1), 1<<16, false))
	clk.Advance(40 * time.Minute)
	get(t, c, "new", cn.fillWith(body(100, 2), 100, false))
	clk.Advance(30 * time.Minute)
	c.sweep()
	if s := c.Stats(); s.Memory.Entries != 1 || s.Disk.Entries != 1 {
		t.Errorf("after sweep Stats() = %+v; want 1 entry in each tier", s)
	}
	if _, st, _ := get(t, c, "new", cn.fillWith(body(100, 2), 100, false)); st != Hit {
		t.Errorf("Get(new) = %v, want HIT", st)
	}
	if _, st, _ := get(t, c, "old", cn.fillWith(body(100, 1), 100, false)); st != Miss {
		t.Errorf("Get(old) = %v, want MISS (inactive)", st)
	}
	if files := cacheFiles(t, cfg.Disk.Path); len(files) != 2 {
		t.Errorf("files after sweep = %v, want those of new and old", files)
	}
}

func TestCorruptFilesRemovedAtStart(t *testing.T) {
	t.Parallel()
	clk := newClock()
	cfg := diskConfig(t)
	c := newCache(t, cfg, clk)
	var cn counter
	for _, k := range []string{"good", "truncated", "flipped", "moved"} {
		get(t, c, k, cn.fillWith(body(5000, 1), 1000, false))
	}
	c.Close()
	d, _ := openDisk(cfg.Disk)
	// A file cut short by a crash.
	if err := os.Truncate(d.pathFor("truncated"), 3000); err != nil {
		t.Fatal(err)
	}
	// A flipped bit in the header.
	b, _ := os.ReadFile(d.pathFor("flipped"))
	b[fixedLen+3] ^= 0x40
	os.WriteFile(d.pathFor("flipped"), b, 0o600)
	// A valid file at the wrong path.
	os.Rename(d.pathFor("moved"), filepath.Join(filepath.Dir(d.pathFor("good")), "0123456789abcdef0123456789abcdef"))
	// Garbage and an interrupted fill.
	os.WriteFile(filepath.Join(cfg.Disk.Path, "junk"), []byte("not a cache file"), 0o600)
	os.WriteFile(filepath.Join(cfg.Disk.Path, "tmp-123"), []byte("partial"), 0o600)

	c2 := newCache(t, cfg, clk)
	if s := c2.Stats().Disk; s.Entries != 1 {
		t.Errorf("after start Stats().Disk.Entries = %d, want 1", s.Entries)
	}
	files := cacheFiles(t, cfg.Disk.Path)
	if len(files) != 1 || !strings.HasSuffix(d.pathFor("good"), files[0]) {
		t.Errorf("files after start = %v, want only the good one", files)
	}
	if _, st, _ := get(t, c2, "good", cn.fillWith(body(5000, 1), 1000, false)); st != Hit {
		t.Errorf("Get(good) = %v, want HIT", st)
	}
	if got, st, _ := get(t, c2, "truncated", cn.fillWith(body(5000, 1), 1000, false)); st != Miss || len(got) != 5000 {
		t.Errorf("Get(truncated) = %d bytes, %v; want 5000 bytes, MISS", len(got), st)
	}
}

func TestFileRemovedUnderneath(t *testing.T) {
	t.Parallel()
	cfg := Config{Disk: DiskConfig{Path: t.TempDir()}, MemoryMaxObject: 1024}
	c := newCache(t, cfg, newClock())
	var cn counter
	data := body(5000, 1)
	get(t, c, "k", cn.fillWith(data, 1000, false))
	os.Remove(c.disk.pathFor("k"))
	if got, st, err := get(t, c, "k", cn.fillWith(data, 1000, false)); err != nil || st != Miss || !bytes.Equal(got, data) {
		t.Errorf("Get after the file vanished = %d bytes, %v, %v; want a MISS with the body", len(got), st, err)
	}
}

func TestDiskMaxEntries(t *testing.T) {
	t.Parallel()
	cfg := Config{Disk: DiskConfig{Path: t.TempDir(), MaxEntries: 5}, MemoryMaxObject: 10}
	c := newCache(t, cfg, newClock())
	for i := 0; i < 12; i++ {
		var cn counter
		get(t, c, fmt.Sprint("k", i), cn.fillWith(body(100, byte(i)), 100, false))
	}
	if files := cacheFiles(t, cfg.Disk.Path); len(files) != 5 || c.Stats().Disk.Entries != 5 {
		t.Errorf("%d files, Stats().Disk.Entries = %d; want 5 (max_entries)", len(files), c.Stats().Disk.Entries)
	}
}

func TestDiskObjectLargerThanMaxSize(t *testing.T) {
	t.Parallel()
	cfg := Config{Disk: DiskConfig{Path: t.TempDir(), MaxSize: 1 << 20}, MemoryMaxObject: 1024}
	c := newCache(t, cfg, newClock())
	data := body(3<<20, 8)
	for _, unknown := range []bool{false, true} {
		var cn counter
		got, st, err := get(t, c, fmt.Sprint("big", unknown), cn.fillWith(data, 1<<16, unknown))
		if err != nil || st != Miss || !bytes.Equal(got, data) {
			t.Errorf("Get(unknown size %v) = %d bytes, %v, %v; want all %d bytes, MISS", unknown, len(got), st, err, len(data))
		}
	}
	waitFor(t, "fills to finish", func() bool { return idle(c) })
	if files := cacheFiles(t, cfg.Disk.Path); len(files) != 0 {
		t.Errorf("files on disk = %v, want none (each body is over max_size)", files)
	}
	if s := c.Stats().Disk; s.Bytes != 0 || s.Entries != 0 {
		t.Errorf("Stats().Disk = %+v, want empty", s)
	}
}
