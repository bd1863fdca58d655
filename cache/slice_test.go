package cache

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync"
	"testing"
)

// rangeOrigin serves ranges of data and records which it was asked for.
type rangeOrigin struct {
	data []byte
	etag string
	mu   sync.Mutex
	asks []int64 // offsets fetched
}

func (o *rangeOrigin) fill(ctx context.Context, off, n int64, w *Writer) error {
	o.mu.Lock()
	o.asks = append(o.asks, off)
	o.mu.Unlock()
	size := int64(len(o.data))
	if err := w.Start(Meta{Status: 200, Size: size, ETag: o.etag}); err != nil {
		return err
	}
	if off >= size {
		return nil
	}
	end := min(off+n, size)
	for p := off; p < end; p += 100_000 {
		if _, err := w.Write(o.data[p:min(p+100_000, end)]); err != nil {
			return err
		}
	}
	return nil
}

func (o *rangeOrigin) fetched() []int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := append([]int64(nil), o.asks...)
	o.asks = nil
	return out
}

func readRange(t *testing.T, c *Cache, key string, off, n int64, o *rangeOrigin) ([]byte, Status, Meta) {
	t.Helper()
	r, st, err := c.GetRange(context.Background(), Request{Key: key, Group: key}, off, n, o.fill)
	if err != nil {
		t.Fatalf("GetRange(%q, %d, %d): %v", key, off, n, err)
	}
	defer r.Close()
	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("GetRange(%q, %d, %d): read: %v", key, off, n, err)
	}
	if int64(len(got)) != r.Size() {
		t.Errorf("GetRange(%q, %d, %d): read %d bytes, Size() = %d", key, off, n, len(got), r.Size())
	}
	return got, st, r.Meta()
}

func idle(c *Cache) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.flights) == 0
}

func equalInts(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestSlices(t *testing.T) {
	t.Parallel()
	const S = 256 << 10
	for _, disk := range []bool{false, true} {
		t.Run(map[bool]string{false: "memory", true: "disk"}[disk], func(t *testing.T) {
			t.Parallel()
			cfg := Config{SliceSize: S}
			if disk {
				cfg.Disk.Path = t.TempDir()
				cfg.MemoryMaxObject = 4096
			}
			c := newCache(t, cfg, newClock())
			o := &rangeOrigin{data: body(40*S+1234, 5), etag: `"e1"`}
			size := int64(len(o.data))
			for _, tc := range []struct {
				off, n int64
				fetch  []int64
				status Status
			}{
				{5*S + 10, 100, []int64{5 * S}, Miss},
				{5*S + 1000, 100, nil, Hit},
				{6*S - 50, 100, []int64{6 * S}, Hit}, // status of the first slice
				{7*S - 1, 2*S + 2, []int64{7 * S, 8 * S, 9 * S}, Hit},
				{40 * S, 5000, []int64{40 * S}, Miss}, // the short last slice
				{size - 10, 1 << 40, nil, Hit},
				{0, 0, []int64{0}, Miss},
			} {
				got, st, meta := readRange(t, c, "/huge", tc.off, tc.n, o)
				// The rest of each slice is stored after the Reader is done with it.
				waitFor(t, "fills to finish", func() bool { return idle(c) })
				end := min(tc.off+tc.n, size)
				if !bytes.Equal(got, o.data[tc.off:end]) {
					t.Errorf("GetRange(%d, %d) = %d bytes that differ from the object's", tc.off, tc.n, len(got))
				}
				if f := o.fetched(); !equalInts(f, tc.fetch) {
					t.Errorf("GetRange(%d, %d) fetched slices at %v, want %v", tc.off, tc.n, f, tc.fetch)
				}
				if st != tc.status || meta.Size != size || meta.ETag != `"e1"` {
					t.Errorf("GetRange(%d, %d) = %v, Meta %+v; want %v and the object's size", tc.off, tc.n, st, meta, tc.status)
				}
			}
			// Past the end: an empty Reader, and the size to answer 416 with.
			got, _, meta := readRange(t, c, "/huge", size+5, 10, o)
			if len(got) != 0 || meta.Size != size {
				t.Errorf("GetRange past the end = %d bytes, size %d; want 0 bytes, size %d", len(got), meta.Size, size)
			}
			o.fetched()

			// Slices belong to the group.
			if n, _ := c.Purge("/huge", false); n != 7 {
				t.Errorf("Purge(/huge) = %d entries, want the 7 slices", n)
			}
			readRange(t, c, "/huge", 5*S+10, 100, o)
			if f := o.fetched(); !equalInts(f, []int64{5 * S}) {
				t.Errorf("after purge fetched %v, want [%d]", f, 5*S)
			}
		})
	}
}

func TestSliceFromWholeEntry(t *testing.T) {
	t.Parallel()
	c := newCache(t, Config{SliceSize: 64 << 10}, newClock())
	data := body(100_000, 1)
	var cn counter
	get(t, c, "/w", cn.fillWith(data, 10_000, false))
	o := &rangeOrigin{data: data}
	got, st, _ := readRange(t, c, "/w", 500, 1000, o)
	if st != Hit || !bytes.Equal(got, data[500:1500]) || len(o.fetched()) != 0 {
		t.Errorf("GetRange on a whole entry = %d bytes, %v; want a HIT with bytes 500-1499 and no fetch", len(got), st)
	}
}

func TestSliceMismatch(t *testing.T) {
	t.Parallel()
	const S = 64 << 10
	c := newCache(t, Config{SliceSize: S}, newClock())
	o := &rangeOrigin{data: body(10*S, 1), etag: `"a"`}
	readRange(t, c, "/m", 0, 10, o)
	o.etag = `"b"` // the object changed upstream
	r, _, err := c.GetRange(context.Background(), Request{Key: "/m"}, S-5, 10, o.fill)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := io.ReadAll(r); !errors.Is(err, ErrSliceMismatch) {
		t.Errorf("reading across slices of two versions = %v, want %v", err, ErrSliceMismatch)
	}
}

func TestGetRangeNeedsSliceSize(t *testing.T) {
	t.Parallel()
	c := newCache(t, Config{}, newClock())
	if _, _, err := c.GetRange(context.Background(), Request{Key: "k"}, 0, 1, nil); err == nil {
		t.Error("GetRange without slice_size succeeded")
	}
}

func TestRangeExtremes(t *testing.T) {
	t.Parallel()
	c := newCache(t, Config{SliceSize: 4096}, newClock())
	data := body(10_000, 3)
	var cn counter
	get(t, c, "/whole", cn.fillWith(data, 1000, false))
	o := &rangeOrigin{data: data}
	for _, key := range []string{"/whole", "/sliced"} {
		for _, tc := range []struct{ off, n int64 }{
			{0, 1<<63 - 1}, {1<<63 - 2, 1<<63 - 1}, {9_999, 1}, {10_000, 1}, {5, 0},
		} {
			got, _, meta := readRange(t, c, key, tc.off, tc.n, o)
			start := min(tc.off, 10_000)
			want := data[start : start+min(tc.n, 10_000-start)]
			if !bytes.Equal(got, want) || meta.Size != 10_000 {
				t.Errorf("GetRange(%q, %d, %d) = %d bytes (size %d), want %d bytes", key, tc.off, tc.n, len(got), meta.Size, len(want))
			}
		}
	}
}
