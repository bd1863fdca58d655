package cache

import (
	"context"
	"io"
	"testing"
)

func BenchmarkMemoryHit(b *testing.B) {
	c := newCache(b, Config{}, newClock())
	var cn counter
	get(b, c, "/hot", cn.fillWith(body(4096, 1), 4096, false))
	buf := make([]byte, 8192)
	ctx := context.Background()
	req := Request{Key: "/hot"}
	b.ReportAllocs()
	b.SetBytes(4096)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r, _, err := c.Get(ctx, req, nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(r, buf[:4096]); err != nil {
			b.Fatal(err)
		}
		r.Close()
	}
}

func BenchmarkMemoryHitParallel(b *testing.B) {
	c := newCache(b, Config{}, newClock())
	var cn counter
	get(b, c, "/hot", cn.fillWith(body(4096, 1), 4096, false))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		buf := make([]byte, 4096)
		for pb.Next() {
			r, _, err := c.Get(context.Background(), Request{Key: "/hot"}, nil)
			if err != nil {
				b.Fatal(err)
			}
			io.ReadFull(r, buf)
			r.Close()
		}
	})
}

func BenchmarkDiskHit(b *testing.B) {
	c := newCache(b, Config{Disk: DiskConfig{Path: b.TempDir()}, MemoryMaxObject: 1024}, newClock())
	var cn counter
	get(b, c, "/warm", cn.fillWith(body(64<<10, 1), 64<<10, false))
	buf := make([]byte, 64<<10)
	b.ReportAllocs()
	b.SetBytes(64 << 10)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r, _, err := c.Get(context.Background(), Request{Key: "/warm"}, nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(r, buf); err != nil {
			b.Fatal(err)
		}
		r.Close()
	}
}

func TestMemoryHitAllocs(t *testing.T) {
	c := newCache(t, Config{}, newClock())
	var cn counter
	get(t, c, "/hot", cn.fillWith(body(4096, 1), 4096, false))
	buf := make([]byte, 4096)
	req := Request{Key: "/hot"}
	ctx := context.Background()
	allocs := testing.AllocsPerRun(1000, func() {
		r, _, err := c.Get(ctx, req, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.ReadFull(r, buf)
		r.Close()
	})
	if allocs != 0 {
		t.Errorf("memory hit: %v allocations, want 0", allocs)
	}
}
