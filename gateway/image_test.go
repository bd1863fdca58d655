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
	"path"
	"strconv"
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
	"github.com/mogway/mogway/internal/testutil"
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
		// Set before ServeBytes writes; a 404 is unchanged, as http.NotFound sets its own type.
		if strings.HasSuffix(r.URL.Path, ".txt") {
			w.Header().Set("Content-Type", "text/plain")
		}
		testutil.ServeBytes(w, r, files)
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

// paddedJPEG is a 400×300 JPEG grown to at least size bytes by comment segments after its SOI
// marker: a source large in bytes and small in pixels.
func paddedJPEG(t *testing.T, size int) []byte {
	t.Helper()
	src := imagingtest.JPEG(t, 400, 300)
	out := append([]byte(nil), src[:2]...) // SOI
	for len(out)+len(src)-2 < size {
		seg := make([]byte, 65533) // the most a segment holds after its length field
		out = append(out, 0xFF, 0xFE, 0xFF, 0xFF)
		out = append(out, seg...)
	}
	return append(out, src[2:]...)
}

// endlessCopies is how many times sourceOrigin sends its source for "endless.jpg": far more bytes
// than the socket buffers between it and the gateway hold.
const endlessCopies = 32

// sourceOrigin serves one source at every path, the way the path's base name says: "declared.jpg"
// with its Content-Length; "chunked.jpg" without a length (chunked); "stalled.jpg" declaring its
// length, then sending nothing until the gateway hangs up; "endless.jpg" without a length, the
// source endlessCopies times over. For each request of endless.jpg it records whether the stream
// was cut before its end.
type sourceOrigin struct {
	*httpServer
	mu  sync.Mutex      // guards cut
	cut map[string]bool // by request path, once its handler returned
}

func startSourceOrigin(t *testing.T, ip string, src []byte) *sourceOrigin {
	t.Helper()
	o := &sourceOrigin{cut: map[string]bool{}}
	stop := make(chan struct{})
	o.httpServer = startHTTP(t, ip, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/jpeg")
		switch path.Base(r.URL.Path) {
		case "declared.jpg":
			w.Header().Set("Content-Length", strconv.Itoa(len(src)))
			w.Write(src)
		case "chunked.jpg":
			w.WriteHeader(200)
			w.(http.Flusher).Flush() // the head goes out without a length: the body is chunked
			w.Write(src)
		case "stalled.jpg":
			w.Header().Set("Content-Length", strconv.Itoa(len(src)))
			w.WriteHeader(200)
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
			case <-stop:
			}
		case "endless.jpg":
			w.WriteHeader(200)
			w.(http.Flusher).Flush()
			cut := false
			for range endlessCopies {
				if _, err := w.Write(src); err != nil {
					cut = true
					break
				}
			}
			o.mu.Lock()
			o.cut[r.URL.Path] = cut
			o.mu.Unlock()
		default:
			http.NotFound(w, r)
		}
	})
	t.Cleanup(func() { close(stop) }) // runs before startHTTP's cleanup waits for the handlers
	return o
}

// streamCut waits for the handler of p to end and reports whether its stream was cut.
func (o *sourceOrigin) streamCut(t *testing.T, p string) bool {
	t.Helper()
	var cut, done bool
	waitFor(t, "the origin's handler of "+p+" to end", func() bool {
		o.mu.Lock()
		defer o.mu.Unlock()
		cut, done = o.cut[p]
		return done
	})
	return cut
}

// TestImageMaxSourceSize: a source over max_source_size is answered 415, on a cached route and on
// one without the cache, whether its origin declares its length (refused from the Content-Length,
// before any body byte is read) or sends it chunked (read up to the limit and no further: an
// endless body is cut). The same source is transformed under a larger limit.
func TestImageMaxSourceSize(t *testing.T) {
	t.Parallel()
	src := paddedJPEG(t, 2<<20)
	o := startSourceOrigin(t, "127.0.0.12", src)
	small := func(prefix string, rc RouteCache) Route {
		return Route{Prefix: prefix, Servers: []UpstreamServer{{Addr: o.addr}}, Cache: rc,
			Image: &RouteImage{MaxSourceSize: conf.MiB}}
	}
	g := startGateway(t, Config{Cache: &cache.Config{}, Hedge: Hedge{Delay: "off"}, Routes: []Route{
		small("/u/", RouteCache{Enabled: "off"}),
		small("/c/", RouteCache{}),
		{Prefix: "/big/", Servers: []UpstreamServer{{Addr: o.addr}}, Cache: RouteCache{Enabled: "off"},
			Image: &RouteImage{MaxSourceSize: 4 * conf.MiB}},
	}}, Deps{})

	wantImage(t, g.base+"/big/declared.jpg?w=200", "jpeg", 200, 150)
	wantImage(t, g.base+"/big/chunked.jpg?w=200", "jpeg", 200, 150)
	for _, prefix := range []string{"/u/", "/c/"} {
		for _, name := range []string{"declared.jpg", "chunked.jpg", "stalled.jpg", "endless.jpg"} {
			uri := prefix + name + "?w=200"
			if code, _, body, err := get(t, "GET", g.base+uri); code != 415 {
				t.Errorf("GET %s (a %d-byte source) = %d %.40q, %v; want 415", uri, len(src), code, body, err)
			}
		}
		if p := prefix + "endless.jpg"; !o.streamCut(t, p) {
			t.Errorf("the gateway read the whole endless body of %s (%d bytes), want it cut after max_source_size",
				p, endlessCopies*len(src))
		}
	}
}

// TestImageDefaultOutputLimit: without max_width and max_height a request may ask for 4096 pixels
// a side, no more (400).
func TestImageDefaultOutputLimit(t *testing.T) {
	t.Parallel()
	up := startCountingOrigin(t, "127.0.0.13", map[string][]byte{"/l/a.jpg": imagingtest.JPEG(t, 400, 300)})
	g := startGateway(t, Config{Routes: []Route{{Prefix: "/l/", Servers: []UpstreamServer{{Addr: up.addr}},
		Image: &RouteImage{}}}}, Deps{})
	// No mode enlarges: a box of 4096 leaves the 400×300 source as it is.
	wantImage(t, g.base+"/l/a.jpg?w=4096", "jpeg", 400, 300)
	wantImage(t, g.base+"/l/a.jpg?h=4096", "jpeg", 400, 300)
	wantImage(t, g.base+"/l/a.jpg?w=4096&h=4096&fit=cover", "jpeg", 300, 300)
	for _, q := range []string{"w=4097", "h=4097", "w=4097&h=10&fit=cover", "w=10&h=4097&fit=exact"} {
		if code, _, body, _ := get(t, "GET", g.base+"/l/a.jpg?"+q); code != 400 {
			t.Errorf("GET /l/a.jpg?%s = %d %.40q, want 400", q, code, body)
		}
	}
}

// TestImageQueryOff: with query: false the image parameters ask for nothing (the original, even for
// values a query route refuses), and presets still make variants.
func TestImageQueryOff(t *testing.T) {
	t.Parallel()
	src := imagingtest.JPEG(t, 400, 300)
	up := startCountingOrigin(t, "127.0.0.14", map[string][]byte{"/q/a.jpg": src})
	off := false
	g := startGateway(t, Config{Routes: []Route{{Prefix: "/q/", Servers: []UpstreamServer{{Addr: up.addr}},
		Image: &RouteImage{Query: &off, Presets: map[string]ImageVariant{"small": {Width: 40}}}}}}, Deps{})
	for _, q := range []string{"w=200", "w=90&h=90&fit=cover&format=png", "w=abc", "w=5000"} {
		code, h, body, err := get(t, "GET", g.base+"/q/a.jpg?"+q)
		if err != nil || code != 200 || !bytes.Equal(body, src) {
			t.Errorf("GET /q/a.jpg?%s = %d %q, %d bytes, %v; want 200 and the original", q, code, h.Get("Content-Type"), len(body), err)
		}
	}
	wantImage(t, g.base+"/q/small/a.jpg", "jpeg", 40, 30)
	wantImage(t, g.base+"/q/small/a.jpg?w=200", "jpeg", 40, 30)
}

// TestImagePresetShadowsKeys: a path under a preset name is that preset's variant of the key after
// it, never the key itself; a key that only begins with the name's letters, or with part of a
// name holding slashes, is served as it is.
func TestImagePresetShadowsKeys(t *testing.T) {
	t.Parallel()
	src := imagingtest.JPEG(t, 400, 300)
	other := imagingtest.PNG(t, 100, 100)
	up := startCountingOrigin(t, "127.0.0.15", map[string][]byte{
		"/s/a.jpg": src, "/s/small/a.jpg": other, "/s/small/b.jpg": other, "/s/smallish.jpg": other,
		"/s/thumb/x.jpg": other,
	})
	g := startGateway(t, Config{Routes: []Route{{Prefix: "/s/", Servers: []UpstreamServer{{Addr: up.addr}},
		Image: &RouteImage{Presets: map[string]ImageVariant{"small": {Width: 40}, "thumb/100x100": {Width: 100, Height: 100}}}}}}, Deps{})
	wantImage(t, g.base+"/s/small/a.jpg", "jpeg", 40, 30)
	if code, _, body, _ := get(t, "GET", g.base+"/s/small/b.jpg"); code != 404 {
		t.Errorf("GET /s/small/b.jpg (key b.jpg missing, key small/b.jpg stored) = %d %q, want 404", code, body)
	}
	for _, p := range []string{"/s/small/a.jpg", "/s/small/b.jpg"} {
		if n := up.Hits(p); n != 0 {
			t.Errorf("origin asked for %s %d times, want never (the preset shadows the key)", p, n)
		}
	}
	if n := up.Hits("/s/b.jpg"); n != 1 {
		t.Errorf("origin asked for /s/b.jpg %d times, want 1", n)
	}
	for _, p := range []string{"/s/smallish.jpg", "/s/thumb/x.jpg"} {
		if code, _, body, err := get(t, "GET", g.base+p); err != nil || code != 200 || !bytes.Equal(body, other) {
			t.Errorf("GET %s = %d, %d bytes, %v; want 200 and the key's own bytes", p, code, len(body), err)
		}
	}
}

// etagOrigin serves src at every path with an ETag, a Last-Modified and the Cache-Control the
// path's base name selects ("a.jpg": none, "maxage.jpg": max-age=30, "nostore.jpg": no-store,
// "private.jpg": private, "nocache.jpg": no-cache; "cookie.jpg" has none but sets a cookie),
// counting GETs per path.
func startETagOrigin(t *testing.T, ip string, src []byte) *countingOrigin {
	t.Helper()
	o := &countingOrigin{hits: map[string]int{}}
	s := startHTTP(t, ip, func(w http.ResponseWriter, r *http.Request) {
		o.mu.Lock()
		o.hits[r.URL.Path]++
		o.mu.Unlock()
		h := w.Header()
		h.Set("Content-Type", "image/jpeg")
		h.Set("ETag", `"v1"`)
		h.Set("Last-Modified", "Mon, 02 Jan 2006 15:04:05 GMT")
		switch path.Base(r.URL.Path) {
		case "maxage.jpg":
			h.Set("Cache-Control", "max-age=30")
		case "nostore.jpg":
			h.Set("Cache-Control", "no-store")
		case "private.jpg":
			h.Set("Cache-Control", "private")
		case "nocache.jpg":
			h.Set("Cache-Control", "no-cache")
		case "cookie.jpg":
			h.Set("Set-Cookie", "s=1")
		}
		w.Write(src)
	})
	o.addr = s.addr
	return o
}

// TestImageVariantFreshness: a cached variant carries no ETag (the original does) and stays fresh
// as long as a 200 of its route would: the original's max-age unless the route ignores upstream
// Cache-Control, else the route's valid, else the cache's; an original that may not be stored
// (no-store, no-cache, private, Set-Cookie) leaves its variants out of the cache too. Bug fixed
// with it: variant fills ignored the original's Cache-Control and Set-Cookie, so a variant of a
// private or no-store original was cached and served to every client, and max-age was not kept.
func TestImageVariantFreshness(t *testing.T) {
	t.Parallel()
	src := imagingtest.JPEG(t, 400, 300)
	up := startETagOrigin(t, "127.0.0.16", src)
	clock := testutil.NewClock()
	start := clock.Now()
	route := func(prefix string, rc RouteCache) Route {
		return Route{Prefix: prefix, Servers: []UpstreamServer{{Addr: up.addr}}, Cache: rc, Image: &RouteImage{}}
	}
	g := startGateway(t, Config{Cache: &cache.Config{Valid: map[string]conf.Duration{"200": conf.Duration(10 * time.Minute)}},
		Routes: []Route{
			route("/r/", RouteCache{Valid: map[string]conf.Duration{"200": conf.Duration(time.Minute)}}),
			route("/c/", RouteCache{}),
			route("/i/", RouteCache{UpstreamCacheControl: "ignore"}),
		}}, Deps{Now: clock.Now})
	// fetch GETs p and checks the cache status of the answer, and that only the original has an ETag.
	fetch := func(p, wantCS string) {
		t.Helper()
		code, h, _, err := get(t, "GET", g.base+p)
		if err != nil || code != 200 {
			t.Fatalf("GET %s = %d, %v; want 200", p, code, err)
		}
		if cs := h.Get("X-Cache-Status"); cs != wantCS {
			t.Errorf("GET %s at +%v: X-Cache-Status %q, want %q", p, clock.Now().Sub(start), cs, wantCS)
		}
		variant := strings.Contains(p, "?w=")
		if etag := h.Get("ETag"); (etag != "") == variant {
			t.Errorf("GET %s: ETag %q; want one on the original and none on a variant", p, etag)
		}
	}
	paths := []string{"/r/a.jpg", "/c/a.jpg", "/c/maxage.jpg", "/i/maxage.jpg"}
	for _, p := range paths {
		fetch(p, "MISS")
		fetch(p+"?w=100", "MISS")
		fetch(p, "HIT")
		fetch(p+"?w=100", "HIT")
	}
	for _, p := range []string{"/c/nostore.jpg", "/c/private.jpg", "/c/nocache.jpg", "/c/cookie.jpg"} {
		for range 2 {
			fetch(p, "MISS")
			fetch(p+"?w=100", "MISS")
		}
		if n := up.Hits(p); n != 4 {
			t.Errorf("origin GETs of %s for 2 GETs of it and 2 of a variant = %d, want 4 (nothing stored)", p, n)
		}
	}
	// Each answer is fresh up to its lifetime and expired from then on, original and variant alike;
	// an expired one is fetched again and fresh for another lifetime.
	lifetime := map[string]time.Duration{"/r/a.jpg": time.Minute, "/c/a.jpg": 10 * time.Minute,
		"/c/maxage.jpg": 30 * time.Second, "/i/maxage.jpg": 10 * time.Minute}
	expires := map[string]time.Time{}
	for _, p := range paths {
		expires[p] = clock.Now().Add(lifetime[p])
	}
	for _, d := range []time.Duration{29 * time.Second, 2 * time.Second, 30 * time.Second, 9 * time.Minute} {
		clock.Advance(d)
		for _, p := range paths {
			want := "HIT"
			if !clock.Now().Before(expires[p]) {
				want = "EXPIRED"
				expires[p] = clock.Now().Add(lifetime[p])
			}
			fetch(p, want)
			fetch(p+"?w=100", want)
		}
	}
}
