package main

import (
	"bytes"
	"image/jpeg"
	"net"
	"net/http"
	"testing"

	"github.com/mogway/mogway/imaging/imagingtest"
	"github.com/mogway/mogway/internal/testutil"
)

// imagePeakRSSBound is the most resident memory `mogway gateway` may reach while refusing hostile
// images and making one thumbnail of a 2000×1500 JPEG. Decoding one of the bombs would need
// gigabytes.
const imagePeakRSSBound = 128 << 20

// TestE2EImageHostileSources runs the real gateway with image variants on in front of an origin
// serving decompression bombs (a few bytes declaring billions of pixels), a truncated JPEG and a
// text file: each is refused with 415, the process does not crash, its peak memory stays bounded,
// and it still makes a real thumbnail afterwards.
func TestE2EImageHostileSources(t *testing.T) {
	t.Parallel()
	photo := imagingtest.JPEG(t, 2000, 1500)
	files := map[string][]byte{
		"/o/bomb.png":  imagingtest.PNGHeader(50000, 50000),
		"/o/bomb.jpg":  imagingtest.JPEGBomb(t),
		"/o/cut.jpg":   photo[:len(photo)/2],
		"/o/text.jpg":  []byte("not an image at all\n"),
		"/o/photo.jpg": photo,
	}
	ln, err := net.Listen("tcp", "127.0.0.131:0")
	if err != nil {
		t.Fatal(err)
	}
	origin := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		testutil.ServeBytes(w, r, files)
	})}
	go origin.Serve(ln)
	t.Cleanup(func() { origin.Close() })

	cfg := writeConfig(t, `gateway:
  access_log: "off"
  routes:
    - prefix: /o/
      servers: [{addr: "`+ln.Addr().String()+`"}]
      image: {concurrency: 1}
`)
	gw := startReal(t, "gateway", "-c", cfg, "--listen", "127.0.0.131:0")
	base := "http://" + gw.mustLog(t, gatewayListeningRE)[1]
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("gateway log:\n%s", gw.out.String())
		}
	})
	for range 3 {
		for _, p := range []string{"/o/bomb.png", "/o/bomb.jpg", "/o/cut.jpg", "/o/text.jpg"} {
			if code, body := testutil.Fetch(t, "GET", base+p+"?w=200", nil, nil); code != 415 {
				t.Errorf("GET %s?w=200 = %d %q, want 415", p, code, body)
			}
		}
	}
	code, body := testutil.Fetch(t, "GET", base+"/o/photo.jpg?w=200", nil, nil)
	if code != 200 {
		t.Fatalf("GET /o/photo.jpg?w=200 = %d %q, want 200", code, body)
	}
	if cfg, err := jpeg.DecodeConfig(bytes.NewReader(body)); err != nil || cfg.Width != 200 || cfg.Height != 150 {
		t.Errorf("thumbnail = %+v, %v; want a 200×150 JPEG", cfg, err)
	}
	if gw.exited() {
		t.Fatalf("gateway exited; log:\n%s", gw.out.String())
	}
	rss := gw.peakRSS(t)
	t.Logf("gateway peak RSS: %d MiB", rss>>20)
	if rss > imagePeakRSSBound {
		t.Errorf("gateway peak RSS = %d MiB, want at most %d MiB", rss>>20, imagePeakRSSBound>>20)
	}
}
