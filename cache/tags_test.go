package cache

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"reflect"
	"testing"
)

// tagFill is a fill that stores data with tags.
func tagFill(data []byte, tags ...string) FillFunc {
	return func(ctx context.Context, prev *Meta, w *Writer) error {
		if err := w.Start(Meta{Status: 200, Size: int64(len(data)), Tags: tags}); err != nil {
			return err
		}
		_, err := w.Write(data)
		return err
	}
}

// storeTagged stores key in group with tags and waits until it is committed.
func storeTagged(t *testing.T, c *Cache, key, group string, size int, tags ...string) {
	t.Helper()
	r, _, err := c.Get(context.Background(), Request{Key: key, Group: group}, tagFill(body(size, 1), tags...))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, r); err != nil {
		t.Fatal(err)
	}
	settle(t, r)
	r.Close()
}

func TestPurgeTag(t *testing.T) {
	t.Parallel()
	for _, soft := range []bool{false, true} {
		t.Run(fmt.Sprintf("soft=%v", soft), func(t *testing.T) {
			t.Parallel()
			clk := newClock()
			cfg := purgeConfig(t) // memory_max_object 1024: the 2000-byte bodies live on disk only
			c := newCache(t, cfg, clk)
			storeTagged(t, c, "/a?x", "/a", 100, "product-1", "all")
			storeTagged(t, c, "/b", "/b", 2000, "product-1")
			storeTagged(t, c, "/c", "/c", 100, "product-2", "all")
			storeTagged(t, c, "/d", "/d", 100)

			if n, b := c.PurgeTag("product-1", soft); n != 2 || b != 2100 {
				t.Errorf("PurgeTag(product-1) = %d, %d; want 2 entries, 2100 bytes", n, b)
			}
			fail := func(context.Context, *Meta, *Writer) error { return fmt.Errorf("refill") }
			for key, want := range map[string]Status{"/c": Hit, "/d": Hit} {
				if _, st, err := get(t, c, key, fail); err != nil || st != want {
					t.Errorf("Get(%s) after PurgeTag = %v, %v; want %v", key, st, err, want)
				}
			}
			want := Miss
			if soft {
				want = Updating // marked stale, served while a refresh runs
			}
			if _, st, _ := get(t, c, "/b", tagFill(body(2000, 1), "product-1")); st != want {
				t.Errorf("Get(/b) after PurgeTag = %v, want %v", st, want)
			}
			if n, _ := c.PurgeTag("nothing", soft); n != 0 {
				t.Errorf("PurgeTag(nothing) = %d entries, want 0", n)
			}
		})
	}
}

func TestPurgeTagUnindexes(t *testing.T) {
	t.Parallel()
	c := newCache(t, Config{}, newClock())
	storeTagged(t, c, "/a", "/a", 10, "t1", "t2")
	c.Purge("/a", false)
	c.mu.Lock()
	n := len(c.tags)
	c.mu.Unlock()
	if n != 0 {
		t.Errorf("after Purge, %d tags remain indexed, want 0", n)
	}
	// A replacement with other tags is not purged by the old ones.
	storeTagged(t, c, "/a", "/a", 10, "t1")
	storeTagged(t, c, "/a-bypass", "/a", 10, "t3")
	if n, _ := c.PurgeTag("t2", false); n != 0 {
		t.Errorf("PurgeTag(t2) after the entry was replaced = %d, want 0", n)
	}
	if n, _ := c.PurgeTag("t1", false); n != 1 {
		t.Errorf("PurgeTag(t1) = %d, want 1", n)
	}
}

// A tag purge that comes while a fill waits for its answer keeps that answer out of the cache:
// it may predate the purge.
func TestPurgeTagDuringFill(t *testing.T) {
	t.Parallel()
	c := newCache(t, Config{}, newClock())
	purged := make(chan struct{})
	fill := func(ctx context.Context, prev *Meta, w *Writer) error {
		<-purged
		return tagFill(body(10, 2), "t")(ctx, prev, w)
	}
	type got struct {
		r   *Reader
		err error
	}
	done := make(chan got, 1)
	go func() {
		r, _, err := c.Get(context.Background(), Request{Key: "/x"}, fill) // returns once Start ran
		done <- got{r, err}
	}()
	waitFor(t, "the fill to start", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.flights["/x"] != nil
	})
	c.PurgeTag("t", false)
	close(purged)
	g := <-done
	r, err := g.r, g.err
	if err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(r); err != nil || len(b) != 10 {
		t.Errorf("reader of the purged fill got %d bytes, %v; want the 10 bytes", len(b), err)
	}
	settle(t, r)
	r.Close()
	if _, st, _ := get(t, c, "/x", tagFill(body(10, 2), "t")); st != Miss {
		t.Errorf("Get after a purge during the fill = %v, want MISS", st)
	}
}

func TestTagsSurviveRestart(t *testing.T) {
	t.Parallel()
	clk := newClock()
	cfg := diskConfig(t)
	c := newCache(t, cfg, clk)
	storeTagged(t, c, "/a", "/a", 5000, "p1", "p2")
	storeTagged(t, c, "/b", "/b", 5000)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c2 := newCache(t, cfg, clk)
	r, st, err := c2.Get(context.Background(), Request{Key: "/a"}, nil)
	if err != nil || st != Hit {
		t.Fatalf("Get(/a) after restart = %v, %v; want HIT", st, err)
	}
	if got := r.Meta().Tags; !reflect.DeepEqual(got, []string{"p1", "p2"}) {
		t.Errorf("Meta().Tags after restart = %q, want [p1 p2]", got)
	}
	r.Close()
	if n, b := c2.PurgeTag("p2", false); n != 1 || b != 5000 {
		t.Errorf("PurgeTag(p2) after restart = %d, %d; want 1 entry, 5000 bytes", n, b)
	}
	if got := len(cacheFiles(t, cfg.Disk.Path)); got != 1 {
		t.Errorf("%d cache files after PurgeTag, want 1", got)
	}
}

// oldHeader is the header of a cache file written before tags existed (key "/old", group "/old",
// status 200, size 3, one header field A: b, no times).
// It was produced by the format code of that version.
const oldHeader = "6d6f6777617943310000000014000000000000000000000000000000000000000300000000000000d213f613" +
	"042f6f6c64042f6f6c640000c801060101410162"

func TestHeaderWithoutTagsIsTheOldFormat(t *testing.T) {
	t.Parallel()
	h := fileHeader{key: "/old", group: "/old", bodyLen: 3, meta: Meta{Status: 200, Size: 3, Header: []HeaderField{{"A", "b"}}}}
	if got := hex.EncodeToString(encodeHeader(&h)); got != oldHeader {
		t.Errorf("encodeHeader without tags = %s, want the old format %s", got, oldHeader)
	}
	old, _ := hex.DecodeString(oldHeader)
	got, err := parseHeader(old)
	if err != nil {
		t.Fatalf("parseHeader(old format): %v", err)
	}
	if got.key != "/old" || got.meta.Tags != nil || got.meta.Status != 200 {
		t.Errorf("parseHeader(old format) = %+v", got)
	}
}

func TestHeaderTagsRoundTrip(t *testing.T) {
	t.Parallel()
	for _, tags := range [][]string{{"a"}, {"a", "b c", ""}, {"product-1", "all"}} {
		h := fileHeader{key: "k", group: "g", meta: Meta{Status: 200, Tags: tags}}
		got, err := parseHeader(encodeHeader(&h))
		if err != nil {
			t.Fatalf("parseHeader(encodeHeader(tags %q)): %v", tags, err)
		}
		if !reflect.DeepEqual(got.meta.Tags, tags) {
			t.Errorf("tags round trip = %q, want %q", got.meta.Tags, tags)
		}
	}
}
