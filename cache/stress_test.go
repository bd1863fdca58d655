package cache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mogway/mogway/internal/conf"
)

// versioned bodies: the bytes of key k at version v are a function of both, and the ETag names v,
// so a reader can check that the bytes it got belong to the metadata it got.
func versionedBody(key string, v int64, size int) []byte {
	return body(size, byte(len(key))^byte(v*31))
}

// TestConcurrentMix runs Gets, GetRanges, purges, soft purges, sweeps and clock steps at once and
// checks that every body read completely matches its metadata.
func TestConcurrentMix(t *testing.T) {
	t.Parallel()
	clk := newClock()
	cfg := Config{
		Memory: 1 << 20, MemoryMaxObject: 64 << 10, SliceSize: 32 << 10,
		Disk:                 DiskConfig{Path: t.TempDir(), MaxSize: 4 << 20, Inactive: conf.Duration(time.Hour)},
		StaleIfError:         conf.Duration(time.Hour),
		StaleWhileRevalidate: conf.Duration(time.Minute),
		Valid:                map[string]conf.Duration{"200": conf.Duration(time.Minute)},
	}
	c := newCache(t, cfg, clk)
	var version atomic.Int64
	sizeOf := func(key string) int {
		n, _ := strconv.Atoi(key[len("/k"):])
		return []int{0, 100, 50_000, 200_000, 700_000}[n%5]
	}
	var failNext atomic.Int64
	fill := func(key string) FillFunc {
		return func(ctx context.Context, prev *Meta, w *Writer) error {
			if failNext.Add(-1) >= 0 {
				return errors.New("injected failure")
			}
			v := version.Load()
			if prev != nil && prev.ETag == fmt.Sprint(v) {
				return w.NotModified(Meta{})
			}
			data := versionedBody(key, v, sizeOf(key))
			if err := w.Start(Meta{Status: 200, Size: int64(len(data)), ETag: fmt.Sprint(v)}); err != nil {
				return err
			}
			for off := 0; off < len(data); off += 16 << 10 {
				if _, err := w.Write(data[off:min(off+16<<10, len(data))]); err != nil {
					return err
				}
			}
			return nil
		}
	}
	rangeFill := func(key string) RangeFillFunc {
		return func(ctx context.Context, off, n int64, w *Writer) error {
			v := version.Load()
			data := versionedBody(key, v, sizeOf(key))
			if err := w.Start(Meta{Status: 200, Size: int64(len(data)), ETag: fmt.Sprint(v)}); err != nil {
				return err
			}
			if off < int64(len(data)) {
				_, err := w.Write(data[off:min(off+n, int64(len(data)))])
				return err
			}
			return nil
		}
	}
	var checked atomic.Int64
	check := func(key string, r *Reader, off, n int64) error {
		defer r.Close()
		got, err := io.ReadAll(r)
		if err != nil {
			return nil // failures are allowed; wrong bytes are not
		}
		checked.Add(1)
		m := r.Meta()
		v, _ := strconv.ParseInt(m.ETag, 10, 64)
		want := versionedBody(key, v, sizeOf(key))
		off = min(off, int64(len(want)))
		want = want[off:min(off+n, int64(len(want)))]
		if string(got) != string(want) {
			return fmt.Errorf("key %s version %s at %d: got %d bytes not matching the %d of that version", key, m.ETag, off, len(got), len(want))
		}
		return nil
	}

	const workers = 6
	ops := 150
	if testing.Short() {
		ops = 40
	}
	var wg sync.WaitGroup
	errs := make(chan error, workers*ops)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewSource(int64(w)))
			for i := 0; i < ops; i++ {
				key := fmt.Sprint("/k", rng.Intn(20))
				switch op := rng.Intn(100); {
				case op < 60:
					r, _, err := c.Get(context.Background(), Request{Key: key}, fill(key))
					if err == nil {
						if err := check(key, r, 0, 1<<40); err != nil {
							errs <- err
						}
					}
				case op < 75:
					off, n := rng.Int63n(int64(sizeOf(key))+10), rng.Int63n(100_000)
					r, _, err := c.GetRange(context.Background(), Request{Key: key}, off, n, rangeFill(key))
					if err == nil {
						if err := check(key, r, off, n); err != nil {
							errs <- err
						}
					}
				case op < 80:
					c.Purge(key, rng.Intn(2) == 0)
				case op < 82:
					c.PurgePrefix("/k1", rng.Intn(2) == 0)
				case op < 88:
					version.Add(1)
				case op < 92:
					clk.Advance(time.Duration(rng.Intn(90)) * time.Second)
				case op < 95:
					failNext.Store(1)
				case op < 97:
					c.sweep()
				default:
					r, _, err := c.Get(context.Background(), Request{Key: key}, fill(key))
					if err == nil {
						r.Close() // leave early
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := checked.Load(); n < int64(workers*ops/2) {
		t.Errorf("only %d reads completed; the mix should mostly succeed", n)
	}
	waitFor(t, "fills to finish", func() bool { return idle(c) })
	waitFor(t, "fill buffers released", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		var sum int64
		for _, e := range c.entries {
			sum += e.memCost
		}
		return sum == c.memBytes
	})
	s := c.Stats()
	if s.Memory.Bytes > 1<<20 || s.Disk.Bytes > 4<<20 {
		t.Errorf("Stats() = %+v; over the bounds", s)
	}
	c.mu.Lock()
	var diskSum int64
	for el := c.diskLRU.Front(); el != nil; el = el.Next() {
		diskSum += el.Value.(*entry).file.size
	}
	if diskSum != c.diskSize {
		t.Errorf("disk LRU holds %d bytes, accounting says %d", diskSum, c.diskSize)
	}
	c.mu.Unlock()
}
