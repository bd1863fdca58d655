package cache

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mogway/mogway/internal/conf"
)

// versionFill serves "v<version>" bodies, counting calls and recording the prev it got.
type versionFill struct {
	calls   atomic.Int64
	version atomic.Int64
	fail    atomic.Bool
	gotPrev atomic.Pointer[Meta]
}

// filledV1 returns a versionFill at version 1 that has filled key in c once.
func filledV1(t *testing.T, c *Cache, key string) *versionFill {
	t.Helper()
	v := &versionFill{}
	v.version.Store(1)
	get(t, c, key, v.fill)
	return v
}

func (v *versionFill) fill(ctx context.Context, prev *Meta, w *Writer) error {
	v.calls.Add(1)
	if prev != nil {
		v.gotPrev.Store(prev)
	}
	if v.fail.Load() {
		return errors.New("upstream down")
	}
	b := []byte("v" + string(rune('0'+v.version.Load())))
	if err := w.Start(Meta{Status: 200, Size: int64(len(b)), ETag: string(b)}); err != nil {
		return err
	}
	_, err := w.Write(b)
	return err
}

func TestExpiredRefetch(t *testing.T) {
	t.Parallel()
	clk := newClock()
	c := newCache(t, Config{}, clk)
	var v versionFill
	v.version.Store(1)
	if got, st, err := get(t, c, "k", v.fill); err != nil || st != Miss || string(got) != "v1" {
		t.Fatalf("Get = %q, %v, %v; want v1, MISS", got, st, err)
	}
	clk.Advance(9 * time.Minute)
	if got, st, err := get(t, c, "k", v.fill); err != nil || st != Hit || string(got) != "v1" {
		t.Fatalf("Get before expiry = %q, %v, %v; want v1, HIT", got, st, err)
	}
	clk.Advance(2 * time.Minute)
	v.version.Store(2)
	if got, st, err := get(t, c, "k", v.fill); err != nil || st != Expired || string(got) != "v2" {
		t.Fatalf("Get after expiry = %q, %v, %v; want v2, EXPIRED", got, st, err)
	}
	if p := v.gotPrev.Load(); p == nil || p.ETag != "v1" {
		t.Errorf("fill got prev %+v, want the expired entry's metadata (ETag v1)", p)
	}
	if got, st, err := get(t, c, "k", v.fill); err != nil || st != Hit || string(got) != "v2" {
		t.Fatalf("Get after refresh = %q, %v, %v; want v2, HIT", got, st, err)
	}
}

func TestStaleIfError(t *testing.T) {
	t.Parallel()
	clk := newClock()
	c := newCache(t, Config{StaleIfError: conf.Duration(time.Hour)}, clk)
	v := filledV1(t, c, "k")
	v.fail.Store(true)
	clk.Advance(10*time.Minute + 30*time.Minute)
	if got, st, err := get(t, c, "k", v.fill); err != nil || st != Stale || string(got) != "v1" {
		t.Fatalf("Get with upstream down, within stale_if_error = %q, %v, %v; want v1, STALE", got, st, err)
	}
	if _, _, err := c.Get(context.Background(), Request{Key: "k", NoStale: true}, v.fill); err == nil {
		t.Fatalf("Get(NoStale) with upstream down succeeded, want the fill's error")
	}
	clk.Advance(31 * time.Minute)
	if _, _, err := get(t, c, "k", v.fill); err == nil {
		t.Fatalf("Get with upstream down past stale_if_error succeeded, want the fill's error")
	}
	if s := c.Stats(); s.Stale != 1 || s.FillErrors != 3 {
		t.Errorf("Stats() Stale, FillErrors = %d, %d; want 1, 3", s.Stale, s.FillErrors)
	}
}

func TestStaleWhileRevalidate(t *testing.T) {
	t.Parallel()
	clk := newClock()
	c := newCache(t, Config{StaleWhileRevalidate: conf.Duration(time.Minute)}, clk)
	v := filledV1(t, c, "k")
	clk.Advance(10*time.Minute + 30*time.Second)

	v.version.Store(2)
	release := make(chan struct{})
	var refreshes atomic.Int64
	slowFill := func(ctx context.Context, prev *Meta, w *Writer) error {
		refreshes.Add(1)
		<-release
		return v.fill(ctx, prev, w)
	}
	for i := 0; i < 20; i++ {
		if got, st, err := get(t, c, "k", slowFill); err != nil || st != Updating || string(got) != "v1" {
			t.Fatalf("Get %d within stale_while_revalidate = %q, %v, %v; want v1, UPDATING", i, got, st, err)
		}
	}
	close(release)
	waitFor(t, "the background refresh", func() bool { return c.Stats().Fills == 2 })
	if got, st, err := get(t, c, "k", slowFill); err != nil || st != Hit || string(got) != "v2" {
		t.Fatalf("Get after the refresh = %q, %v, %v; want v2, HIT", got, st, err)
	}
	if n := refreshes.Load(); n != 1 {
		t.Errorf("background refreshes = %d, want exactly 1", n)
	}
	if s := c.Stats(); s.Updating != 20 {
		t.Errorf("Stats().Updating = %d, want 20", s.Updating)
	}

	// Past the window the entry is not served stale.
	clk.Advance(12 * time.Minute)
	v.version.Store(3)
	if got, st, err := get(t, c, "k", v.fill); err != nil || st != Expired || string(got) != "v3" {
		t.Fatalf("Get past the window = %q, %v, %v; want v3, EXPIRED", got, st, err)
	}
	// NoStale refuses the stale copy.
	clk.Advance(10*time.Minute + time.Second)
	v.version.Store(4)
	r, st, err := c.Get(context.Background(), Request{Key: "k", NoStale: true}, v.fill)
	if err != nil || st != Expired {
		t.Fatalf("Get(NoStale) = %v, %v; want EXPIRED", st, err)
	}
	r.Close()
}

func TestRevalidateNotModified(t *testing.T) {
	t.Parallel()
	for _, disk := range []bool{false, true} {
		t.Run(map[bool]string{false: "memory", true: "disk"}[disk], func(t *testing.T) {
			t.Parallel()
			clk := newClock()
			cfg := tierConfig(t, disk)
			c := newCache(t, cfg, clk)
			v := filledV1(t, c, "k")
			clk.Advance(11 * time.Minute)
			var sawETag string
			reval := func(ctx context.Context, prev *Meta, w *Writer) error {
				if prev == nil {
					return errors.New("no prev")
				}
				sawETag = prev.ETag
				return w.NotModified(Meta{Header: []HeaderField{{"X-Refreshed", "yes"}}})
			}
			r, st, err := c.Get(context.Background(), Request{Key: "k"}, reval)
			if err != nil || st != Revalidated {
				t.Fatalf("Get = %v, %v; want REVALIDATED", st, err)
			}
			m := r.Meta()
			r.Close()
			if sawETag != "v1" {
				t.Errorf("fill saw prev.ETag %q, want v1", sawETag)
			}
			if want := clk.Now().Add(10 * time.Minute); !m.ExpiresAt.Equal(want) || len(m.Header) != 1 || m.Header[0].Name != "X-Refreshed" {
				t.Errorf("revalidated Meta = %+v; want ExpiresAt %v and the new header", m, want)
			}
			if got, st, err := get(t, c, "k", v.fill); err != nil || st != Hit || string(got) != "v1" {
				t.Fatalf("Get after revalidation = %q, %v, %v; want v1, HIT", got, st, err)
			}
			if disk {
				// The refreshed expiry is on disk: after a restart the entry is still fresh.
				c.Close()
				c = newCache(t, cfg, clk)
				clk.Advance(5 * time.Minute)
				if got, st, err := get(t, c, "k", v.fill); err != nil || st != Hit || string(got) != "v1" {
					t.Fatalf("Get after restart = %q, %v, %v; want v1, HIT", got, st, err)
				}
			}
			// NotModified without a previous entry is refused.
			_, _, err = c.Get(context.Background(), Request{Key: "other"}, func(ctx context.Context, prev *Meta, w *Writer) error {
				return w.NotModified(Meta{})
			})
			if !errors.Is(err, ErrNoPrevious) {
				t.Errorf("NotModified on a miss = %v, want %v", err, ErrNoPrevious)
			}
		})
	}
}

func TestBypass(t *testing.T) {
	t.Parallel()
	c := newCache(t, Config{}, newClock())
	v := filledV1(t, c, "k")
	v.version.Store(2)
	r, st, err := c.Get(context.Background(), Request{Key: "k", Bypass: true}, v.fill)
	if err != nil || st != Bypass {
		t.Fatalf("Get(Bypass) = %v, %v; want BYPASS", st, err)
	}
	r.Close()
	waitFor(t, "the bypass fill to be stored", func() bool { return c.Stats().Fills == 2 })
	if got, st, err := get(t, c, "k", v.fill); err != nil || st != Hit || string(got) != "v2" {
		t.Fatalf("Get after bypass = %q, %v, %v; want v2, HIT", got, st, err)
	}
}

// Issue 9 item 8: a bypass of a key with nothing stored reported MISS, and BYPASS only once the
// bypass fill had stored something; nginx reports BYPASS whenever the bypass condition holds.
func TestBypassWithNothingStored(t *testing.T) {
	t.Parallel()
	c := newCache(t, Config{}, newClock())
	var v versionFill
	v.version.Store(1)
	for i := range 2 {
		r, st, err := c.Get(context.Background(), Request{Key: "k", Bypass: true}, v.fill)
		if err != nil || st != Bypass {
			t.Fatalf("Get(Bypass) #%d = %v, %v; want BYPASS", i+1, st, err)
		}
		settle(t, r)
		r.Close()
	}
}
