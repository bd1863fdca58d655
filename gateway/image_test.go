package gateway

import (
	"bytes"
	"errors"
	"image"
	"image/jpeg"
	"image/png"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/image/webp"

	"github.com/mogway/mogway/cache"
	"github.com/mogway/mogway/imaging"
	"github.com/mogway/mogway/imaging/imagingtest"
	"github.com/mogway/mogway/internal/clustertest"
	"github.com/mogway/mogway/internal/conf"
	"github.com/mogway/mogway/purge"
)

// wantImage fetches url and checks the answer is an image of format and size w × h.
func wantImage(t *testing.T, url, format string, w, h int, hdr ...string) http.Header {
	t.Helper()
	code, hd, body, err := get(t, "GET", url, hdr...)
	if err != nil || code != 200 {
		t.Fatalf("GET %s = %d %q, %v; want 200", url, code, body, err)
	}
	if ct := hd.Get("Content-Type"); ct != "image/"+format {
		t.Errorf("GET %s: Content-Type %q, want image/%s", url, ct, format)
	}
	var cfg image.Config
	switch format {
	case "jpeg":
		cfg, err = jpeg.DecodeConfig(bytes.NewReader(body))
	case "png":
		cfg, err = png.DecodeConfig(bytes.NewReader(body))
	}
	if err != nil {
		t.Fatalf("GET %s: body is not %s: %v", url, format, err)
	}
	if cfg.Width != w || cfg.Height != h {
		t.Errorf("GET %s: %d×%d, want %d×%d", url, cfg.Width, cfg.Height, w, h)
	}
	return hd
}

// TestImageTrackerRoute makes variants of objects stored in a real cluster, by query parameters and
// by path preset, and refuses what is not an image or is over the limits.
func TestImageTrackerRoute(t *testing.T) {
	t.Parallel()
	c := clustertest.New(t, clustertest.Options{Nodes: 1, Trackers: 1, Domains: map[string]map[string]int{"d": {"c1": 1}}})
	g := clusterGateway(t, c.TrackerAddrs(), Route{Prefix: "/img/", Domain: "d", Class: "c1",
		Methods: []string{"GET", "PUT"}, Allow: []string{"127.0.0.0/8"},
		Image: &RouteImage{MaxSourcePixels: 1_000_000, MaxWidth: 1000, MaxHeight: 1000,
			Presets: map[string]ImageVariant{"thumb/100x100": {Width: 100, Height: 100, Fit: "cover"}, "small": {Width: 40}}}})
	src := imagingtest.JPEG(t, 400, 300)
	for key, data := range map[string][]byte{
		"a.jpg": src, "notes.txt": []byte("plain text, not an image\n"), "bomb.png": imagingtest.PNGHeader(50000, 50000),
		"cut.jpg": src[:len(src)/3], "big.jpg": imagingtest.JPEG(t, 1200, 1000),
	} {
		if code, body := put(t, g.base+"/img/"+key, bytes.NewReader(data), int64(len(data))); code != 201 {
			t.Fatalf("PUT %s = %d %q", key, code, body)
		}
	}
	wantImage(t, g.base+"/img/a.jpg?w=200", "jpeg", 200, 150)
	wantImage(t, g.base+"/img/a.jpg?h=60&q=50", "jpeg", 80, 60)
	wantImage(t, g.base+"/img/a.jpg?w=50&format=png", "png", 50, 38)
	wantImage(t, g.base+"/img/a.jpg?w=90&h=90&fit=cover", "jpeg", 90, 90)
	wantImage(t, g.base+"/img/a.jpg?w=90&h=30&fit=exact&rotate=90", "jpeg", 30, 90)
	wantImage(t, g.base+"/img/a.jpg?crop=0,0,100,100", "jpeg", 100, 100)
	wantImage(t, g.base+"/img/thumb/100x100/a.jpg", "jpeg", 100, 100)
	wantImage(t, g.base+"/img/small/a.jpg", "jpeg", 40, 30)
	if code, _, body, err := get(t, "GET", g.base+"/img/a.jpg"); err != nil || code != 200 || !bytes.Equal(body, src) {
		t.Errorf("GET without image parameters = %d, %d bytes, %v; want 200 and the original", code, len(body), err)
	}
	if code, h, _, _ := get(t, "HEAD", g.base+"/img/a.jpg?w=200"); code != 200 || h.Get("Content-Type") != "image/jpeg" {
		t.Errorf("HEAD of a variant = %d %q, want 200 image/jpeg", code, h.Get("Content-Type"))
	}
	for _, tc := range []struct {
		uri  string
		code int
	}{
		{"/img/a.jpg?w=abc", 400},
		{"/img/a.jpg?w=5000", 400},
		{"/img/a.jpg?fit=fill&w=10", 400},
		{"/img/a.jpg?format=tiff", 400},
		{"/img/a.jpg?rotate=45", 400},
		{"/img/a.jpg?crop=500,500,10,10", 400},
		{"/img/nosuch.jpg?w=10", 404},
		{"/img/notes.txt?w=10", 415},
		{"/img/bomb.png?w=10", 415},
		{"/img/cut.jpg?w=10", 415},
		{"/img/big.jpg?w=10", 415}, // 1.2 megapixels, over max_source_pixels
	} {
		if code, _, body, _ := get(t, "GET", g.base+tc.uri); code != tc.code {
			t.Errorf("GET %s = %d %q, want %d", tc.uri, code, body, tc.code)
		}
	}
}

// countingOrigin serves files from a map and counts GETs per path.
type countingOrigin struct {
	addr string
	mu   sync.Mutex // guards hits
	hits map[string]int
}

func startCountingOrigin(t *testing.T, ip string, files map[string][]byte) *countingOrigin {
	t.Helper()
	o := &countingOrigin{hits: map[string]int{}}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.mu.Lock()
		o.hits[r.URL.Path]++
		o.mu.Unlock()
		b, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		if strings.HasSuffix(r.URL.Path, ".txt") {
			w.Header().Set("Content-Type", "text/plain")
		}
		w.Write(b)
	})}
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	o.addr = ln.Addr().String()
	return o
}

func (o *countingOrigin) Hits(path string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.hits[path]
}

// TestImageCachedVariants: on a cached upstream route each variant is its own entry, built once for
// concurrent requests, and purging (or a PUT of) the original purges its variants.
func TestImageCachedVariants(t *testing.T) {
	t.Parallel()
	src := imagingtest.JPEG(t, 400, 300)
	up := startCountingOrigin(t, "127.0.0.7", map[string][]byte{"/up/a.jpg": src, "/up/t.txt": []byte("text\n")})
	cfg := Config{Cache: &cache.Config{}, Purge: &purge.Config{},
		Routes: []Route{{Prefix: "/up/", Servers: []UpstreamServer{{Addr: up.addr}},
			Image: &RouteImage{Sizes: []string{"200x0", "100x100"}, NotImage: "original", Concurrency: 1}}}}
	g := startGateway(t, cfg, Deps{})

	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wantImage(t, g.base+"/up/a.jpg?w=200", "jpeg", 200, 150)
		}()
	}
	wg.Wait()
	if n := up.Hits("/up/a.jpg"); n != 1 {
		t.Errorf("origin GETs for 8 concurrent requests of one variant = %d, want 1", n)
	}
	if h := wantImage(t, g.base+"/up/a.jpg?w=200", "jpeg", 200, 150); h.Get("X-Cache-Status") != "HIT" {
		t.Errorf("second GET of the variant: X-Cache-Status %q, want HIT", h.Get("X-Cache-Status"))
	}
	// The same variant spelt otherwise is the same entry.
	if h := wantImage(t, g.base+"/up/a.jpg?fit=inside&w=200&q=75", "jpeg", 200, 150); h.Get("X-Cache-Status") != "HIT" {
		t.Errorf("same variant, other spelling: X-Cache-Status %q, want HIT", h.Get("X-Cache-Status"))
	}
	wantImage(t, g.base+"/up/a.jpg?w=100&h=100", "jpeg", 100, 75)
	if code, _, _, _ := get(t, "GET", g.base+"/up/a.jpg?w=300"); code != 400 {
		t.Errorf("GET of a size not in sizes = %d, want 400", code)
	}
	if code, _, body, _ := get(t, "GET", g.base+"/up/a.jpg"); code != 200 || !bytes.Equal(body, src) {
		t.Errorf("GET of the original = %d, %d bytes; want 200 and the source", code, len(body))
	}
	if code, h, body, _ := get(t, "GET", g.base+"/up/t.txt?w=200"); code != 200 || string(body) != "text\n" ||
		h.Get("Content-Type") != "text/plain" {
		t.Errorf("GET of a non-image with not_image: original = %d %q %q; want 200, the text", code, h.Get("Content-Type"), body)
	}
	hits := up.Hits("/up/a.jpg")
	code, res := purgeResult(t, g.base+"/purge/up/a.jpg")
	if code != 200 || res.Purged != 3 {
		t.Fatalf("PURGE of the original = %d, %+v; want 3 entries (the original and two variants)", code, res)
	}
	if h := wantImage(t, g.base+"/up/a.jpg?w=200", "jpeg", 200, 150); h.Get("X-Cache-Status") != "MISS" {
		t.Errorf("variant after purging the original: X-Cache-Status %q, want MISS", h.Get("X-Cache-Status"))
	}
	if n := up.Hits("/up/a.jpg"); n != hits+1 {
		t.Errorf("origin GETs after the purge = %d, want %d", n, hits+1)
	}
}

func TestImageConfigValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"preset", "image:\n  presets:\n    thumb: {width: 100, height: 100, fit: cover}\n", nil},
		{"bad fit", "image:\n  presets:\n    thumb: {width: 100, fit: fill}\n", []string{"cfg.yaml:7:", "gateway.routes[0].image.presets.thumb", "fit"}},
		{"cover needs both", "image:\n  presets:\n    thumb: {width: 100, fit: cover}\n", []string{"image.presets.thumb", "needs a width and a height"}},
		{"preset path", "image:\n  presets:\n    /thumb: {width: 100}\n", []string{"image.presets./thumb", "not a path part"}},
		{"bad size", "image:\n  sizes: [200, 10x10]\n", []string{"cfg.yaml:6:", "image.sizes[0]", "write WxH"}},
		{"not_image", "image:\n  not_image: 404\n", []string{"image.not_image", `write "415" or "original"`}},
		{"quality", "image:\n  quality: 101\n", []string{"image.quality"}},
		{"same param twice", "image:\n  params: {width: s, height: s}\n", []string{"image.params", `"s" names two parameters`}},
		{"unknown field", "image:\n  widht: 3\n", []string{"cfg.yaml:6:", "widht"}},
		{"over output limit", "image:\n  max_width: 100\n  presets:\n    big: {width: 200}\n", []string{"image.presets.big", "over 100"}},
	} {
		// The image block starts on line 5 of the document.
		indented := "      " + strings.ReplaceAll(strings.TrimSuffix(tc.yaml, "\n"), "\n", "\n      ") + "\n"
		doc := "gateway:\n  routes:\n    - prefix: /g/\n      servers: [{addr: \"h:1\"}]\n" + indented
		var f gatewayFile
		err := conf.Decode("cfg.yaml", []byte(doc), &f)
		if len(tc.want) == 0 {
			if err != nil {
				t.Errorf("%s: %v, want no error", tc.name, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: no error, want %q", tc.name, tc.want)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not contain %q", tc.name, err, w)
			}
		}
	}
}

// FuzzImageVariant: any request path and query either asks for no variant, is refused with
// errImageOption, or gives options within the route's limits.
func FuzzImageVariant(f *testing.F) {
	ri := &RouteImage{MaxWidth: 500, MaxHeight: 500, Sizes: []string{"200x0", "0x0", "50x50"},
		Presets: map[string]ImageVariant{"thumb/200x200": {Width: 200, Height: 200, Fit: "cover"}}}
	ir := compileImage(ri)
	f.Add("a.jpg", "w=200&fit=cover&crop=1,2,3,4&rotate=90&q=5&format=png")
	f.Add("thumb/200x200/a.jpg", "")
	f.Add("a.jpg", "crop=,,,&w=-1")
	f.Fuzz(func(t *testing.T, rest, query string) {
		path := "/img/" + rest
		q, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		req, ok, err := ir.variant("/img/", path, q, nil)
		if err != nil {
			if !errors.Is(err, errImageOption) {
				t.Fatalf("variant(%q, %q) = %v, not errImageOption", path, query, err)
			}
			return
		}
		if !ok {
			return
		}
		o := req.o
		if o.Width > 500 || o.Height > 500 || o.Width < 0 || o.Height < 0 || o.Quality < 0 || o.Quality > 100 {
			t.Fatalf("variant(%q, %q) = %+v, outside the limits", path, query, o)
		}
		if !strings.HasPrefix(req.orig, "/img/") || len(req.orig) <= len("/img/") {
			t.Fatalf("variant(%q, %q) names original %q outside the route", path, query, req.orig)
		}
	})
}

// TestImageNegotiate: with negotiate on, a client that accepts WebP gets WebP, others the source's
// format, each a cache entry of its own, all with "Vary: Accept".
func TestImageNegotiate(t *testing.T) {
	t.Parallel()
	if !imaging.CanEncode(imaging.WebP) {
		t.Skipf("the %s build writes no WebP (make test builds with libvips)", imaging.Engine)
	}
	up := startCountingOrigin(t, "127.0.0.8", map[string][]byte{"/n/a.jpg": imagingtest.JPEG(t, 400, 300)})
	g := startGateway(t, Config{Cache: &cache.Config{}, Routes: []Route{{Prefix: "/n/", Servers: []UpstreamServer{{Addr: up.addr}},
		Image: &RouteImage{Negotiate: true}}}}, Deps{})
	for _, tc := range []struct {
		accept, ct, cs string
	}{
		{"image/avif,image/webp,*/*", "image/webp", "MISS"},
		{"image/webp;q=0.8", "image/webp", "HIT"},
		{"image/*", "image/jpeg", "MISS"},
		{"image/webp;q=0", "image/jpeg", "HIT"},
	} {
		code, h, body, err := get(t, "GET", g.base+"/n/a.jpg?w=100", "Accept", tc.accept)
		if err != nil || code != 200 || h.Get("Content-Type") != tc.ct || h.Get("Vary") != "Accept" || h.Get("X-Cache-Status") != tc.cs {
			t.Errorf("GET with Accept %q = %d %q, Vary %q, %s; want 200 %s, Vary Accept, %s", tc.accept, code,
				h.Get("Content-Type"), h.Get("Vary"), h.Get("X-Cache-Status"), tc.ct, tc.cs)
		}
		if tc.ct == "image/webp" {
			if cfg, err := webp.DecodeConfig(bytes.NewReader(body)); err != nil || cfg.Width != 100 {
				t.Errorf("WebP answer: %+v, %v", cfg, err)
			}
		}
	}
	// An explicit format is not negotiated.
	if code, h, _, _ := get(t, "GET", g.base+"/n/a.jpg?w=100&format=png", "Accept", "image/webp"); code != 200 ||
		h.Get("Content-Type") != "image/png" || h.Get("Vary") != "" {
		t.Errorf("explicit format = %d %q, Vary %q; want image/png without Vary", code, h.Get("Content-Type"), h.Get("Vary"))
	}
}

// TestImageVariantPurgeOnPeers: a purge of the original on one gateway purges its variants on the
// purge peers too.
func TestImageVariantPurgeOnPeers(t *testing.T) {
	t.Parallel()
	up := startCountingOrigin(t, "127.0.0.9", map[string][]byte{"/p/a.jpg": imagingtest.JPEG(t, 400, 300)})
	addr1, addr2 := deadAddr(t, "127.0.0.10"), deadAddr(t, "127.0.0.11")
	gwConfig := func(peer string) Config {
		return Config{Cache: &cache.Config{},
			Purge: &purge.Config{Peers: []string{peer}, JournalDir: t.TempDir(),
				RetryMin: conf.Duration(10 * time.Millisecond), RetryMax: conf.Duration(50 * time.Millisecond)},
			Routes: []Route{{Prefix: "/p/", Servers: []UpstreamServer{{Addr: up.addr}}, Image: &RouteImage{}}}}
	}
	g1, _ := startGatewayAt(t, gwConfig(addr2), Deps{}, addr1)
	g2, _ := startGatewayAt(t, gwConfig(addr1), Deps{}, addr2)
	for _, g := range []*gw{g1, g2} {
		wantImage(t, g.base+"/p/a.jpg?w=100", "jpeg", 100, 75)
		if h := wantImage(t, g.base+"/p/a.jpg?w=100", "jpeg", 100, 75); h.Get("X-Cache-Status") != "HIT" {
			t.Fatalf("variant not cached on %s: %q", g.base, h.Get("X-Cache-Status"))
		}
	}
	code, res := purgeResult(t, g1.base+"/purge/p/a.jpg")
	if code != 200 || len(res.Nodes) != 2 || res.Nodes[0].Purged != 1 || res.Nodes[1].Purged != 1 {
		t.Fatalf("PURGE of the original = %d, %+v; want its variant purged on both gateways", code, res)
	}
	for _, g := range []*gw{g1, g2} {
		if h := wantImage(t, g.base+"/p/a.jpg?w=100", "jpeg", 100, 75); h.Get("X-Cache-Status") != "MISS" {
			t.Errorf("variant on %s after the purge: %q, want MISS", g.base, h.Get("X-Cache-Status"))
		}
	}
}
