package imaging

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"image"
	"image/jpeg"
	"image/png"
	"runtime"
	"testing"

	"golang.org/x/image/webp"

	"github.com/mogway/mogway/imaging/imagingtest"
)

// withOrientation inserts an EXIF segment with the given orientation after a JPEG's SOI.
func withOrientation(src []byte, o uint16, order binary.ByteOrder) []byte {
	tiff := make([]byte, 8+2+12+4)
	if order == binary.LittleEndian {
		copy(tiff, "II*\x00")
	} else {
		copy(tiff, "MM\x00*")
	}
	order.PutUint32(tiff[4:], 8)
	order.PutUint16(tiff[8:], 1)
	order.PutUint16(tiff[10:], 0x0112)
	order.PutUint16(tiff[12:], 3)
	order.PutUint32(tiff[14:], 1)
	order.PutUint16(tiff[18:], o)
	seg := append([]byte("Exif\x00\x00"), tiff...)
	app1 := []byte{0xff, 0xe1, 0, 0}
	binary.BigEndian.PutUint16(app1[2:], uint16(len(seg)+2))
	out := append([]byte{}, src[:2]...)
	out = append(out, app1...)
	out = append(out, seg...)
	return append(out, src[2:]...)
}

var testLimits = Limits{MaxSourceBytes: 8 << 20, MaxSourcePixels: 4_000_000, MaxWidth: 2000, MaxHeight: 2000}

func decode(t *testing.T, b []byte) (image.Image, string) {
	t.Helper()
	var img image.Image
	var err error
	f, _ := Sniff(b)
	switch f {
	case JPEG:
		img, err = jpeg.Decode(bytes.NewReader(b))
	case PNG:
		img, err = png.Decode(bytes.NewReader(b))
	default:
		t.Fatalf("output is %q, not JPEG or PNG", f)
	}
	if err != nil {
		t.Fatalf("decode output: %v", err)
	}
	return img, string(f)
}

func TestProcess(t *testing.T) {
	t.Parallel()
	jpg := imagingtest.JPEG(t, 400, 300)
	pngSrc := imagingtest.PNG(t, 400, 300)
	for _, tc := range []struct {
		name       string
		src        []byte
		o          Options
		w, h       int
		format     Format
		redTopLeft bool
	}{
		{"width only", jpg, Options{Width: 200}, 200, 150, JPEG, true},
		{"height only", jpg, Options{Height: 100}, 133, 100, JPEG, true},
		{"inside box", jpg, Options{Width: 100, Height: 100}, 100, 75, JPEG, true},
		{"inside never enlarges", jpg, Options{Width: 1000, Height: 1000}, 400, 300, JPEG, true},
		{"cover", jpg, Options{Width: 100, Height: 100, Fit: Cover}, 100, 100, JPEG, true},
		{"exact", jpg, Options{Width: 50, Height: 120, Fit: Exact}, 50, 120, JPEG, true},
		{"crop then resize", jpg, Options{Crop: Rect{0, 0, 200, 150}, Width: 100}, 100, 75, JPEG, true},
		{"crop clipped to image", jpg, Options{Crop: Rect{300, 200, 500, 500}}, 100, 100, JPEG, false},
		{"rotate 90", jpg, Options{Width: 200, Rotate: 90}, 150, 200, JPEG, false},
		{"rotate 180", jpg, Options{Width: 200, Rotate: 180}, 200, 150, JPEG, false},
		{"png source stays png", pngSrc, Options{Width: 40}, 40, 30, PNG, true},
		{"png to jpeg", pngSrc, Options{Width: 40, Format: JPEG}, 40, 30, JPEG, true},
		{"jpeg to png", jpg, Options{Width: 40, Format: PNG}, 40, 30, PNG, true},
		{"gif source gives png", imagingtest.GIF(t, 40, 30), Options{Width: 20}, 20, 15, PNG, true},
		{"exif 6 turns upright", withOrientation(imagingtest.JPEG(t, 40, 20), 6, binary.BigEndian), Options{}, 20, 40, JPEG, false},
		{"exif 8 little endian", withOrientation(imagingtest.JPEG(t, 40, 20), 8, binary.LittleEndian), Options{Width: 10}, 10, 20, JPEG, false},
		{"exif 3", withOrientation(imagingtest.JPEG(t, 40, 20), 3, binary.BigEndian), Options{}, 40, 20, JPEG, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := NewProcessor(testLimits, 2)
			out, f, err := p.Process(context.Background(), tc.src, tc.o)
			if err != nil {
				t.Fatalf("Process: %v", err)
			}
			if f != tc.format {
				t.Errorf("format = %s, want %s", f, tc.format)
			}
			img, got := decode(t, out)
			if got != string(tc.format) {
				t.Errorf("output bytes are %s, want %s", got, tc.format)
			}
			if b := img.Bounds(); b.Dx() != tc.w || b.Dy() != tc.h {
				t.Errorf("size = %d×%d, want %d×%d", b.Dx(), b.Dy(), tc.w, tc.h)
			}
			r, g, _, _ := img.At(img.Bounds().Min.X+1, img.Bounds().Min.Y+1).RGBA()
			if red := r>>8 > 200 && g>>8 < 60; red != tc.redTopLeft {
				t.Errorf("top-left pixel red = %v, want %v", red, tc.redTopLeft)
			}
		})
	}
}

// TestExifOrientation checks each orientation against what it does to the red top-left quarter of
// a 40×20 source: where the red ends up in the upright output.
func TestExifOrientation(t *testing.T) {
	t.Parallel()
	// Corner of the output holding the source's top-left quarter after turning it upright.
	want := map[uint16]string{1: "tl", 2: "tr", 3: "br", 4: "bl", 5: "tl", 6: "tr", 7: "br", 8: "bl"}
	for o := uint16(1); o <= 8; o++ {
		src := withOrientation(imagingtest.JPEG(t, 40, 20), o, binary.BigEndian)
		info, err := Probe(src, testLimits)
		if err != nil || info.Orientation != int(o) {
			t.Fatalf("Probe(orientation %d) = %+v, %v", o, info, err)
		}
		out, _, err := NewProcessor(testLimits, 1).Process(context.Background(), src, Options{Format: PNG})
		if err != nil {
			t.Fatal(err)
		}
		img, _ := decode(t, out)
		b := img.Bounds()
		corners := map[string]image.Point{"tl": {2, 2}, "tr": {b.Dx() - 3, 2}, "bl": {2, b.Dy() - 3}, "br": {b.Dx() - 3, b.Dy() - 3}}
		r, g, _, _ := img.At(corners[want[o]].X, corners[want[o]].Y).RGBA()
		if r>>8 < 200 || g>>8 > 60 {
			t.Errorf("orientation %d: corner %s is not red", o, want[o])
		}
	}
}

func TestHostileSources(t *testing.T) {
	t.Parallel()
	jpg := imagingtest.JPEG(t, 400, 300)
	for _, tc := range []struct {
		name string
		src  []byte
		want error
	}{
		{"text", []byte("hello, this is not an image\n"), ErrNotImage},
		{"empty", nil, ErrNotImage},
		{"html", []byte("<html><body>x</body></html>"), ErrNotImage},
		{"truncated header", jpg[:20], ErrNotImage},
		{"truncated data", jpg[:len(jpg)/2], ErrNotImage},
		{"png bomb header", imagingtest.PNGHeader(100000, 100000), ErrSourceTooLarge},
		{"jpeg bomb header", imagingtest.JPEGBomb(t), ErrSourceTooLarge},
		{"png zero size", imagingtest.PNGHeader(0, 10), ErrNotImage},
		{"png header only", imagingtest.PNGHeader(100, 100), ErrNotImage},
		{"over byte limit", make([]byte, testLimits.MaxSourceBytes+1), ErrSourceTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := NewProcessor(testLimits, 1).Process(context.Background(), tc.src, Options{Width: 100})
			if !errors.Is(err, tc.want) {
				t.Fatalf("Process = %v, want %v", err, tc.want)
			}
		})
	}
}

// TestBombAllocatesLittle: refusing sources that declare billions of pixels allocates next to nothing.
// Not parallel, so the allocation counter sees this test alone.
func TestBombAllocatesLittle(t *testing.T) {
	p := NewProcessor(Limits{MaxSourcePixels: 40_000_000}, 1)
	for _, src := range [][]byte{imagingtest.JPEGBomb(t), imagingtest.PNGHeader(100000, 100000)} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, _, err := p.Process(context.Background(), src, Options{Width: 10})
		runtime.ReadMemStats(&after)
		if !errors.Is(err, ErrSourceTooLarge) {
			t.Fatalf("Process(bomb) = %v, want ErrSourceTooLarge", err)
		}
		if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
			t.Errorf("refusing a bomb allocated %d bytes, want under 1 MiB", n)
		}
	}
}

func TestCheckOptions(t *testing.T) {
	t.Parallel()
	p := NewProcessor(testLimits, 1)
	for _, o := range []Options{
		{Width: 2001}, {Height: 2001}, {Width: -1}, {Fit: "fill"}, {Fit: Cover, Width: 10},
		{Fit: Exact, Height: 10}, {Rotate: 45}, {Quality: 101}, {Crop: Rect{-1, 0, 1, 1}},
	} {
		if err := p.Check(o); !errors.Is(err, ErrBadOptions) {
			t.Errorf("Check(%+v) = %v, want ErrBadOptions", o, err)
		}
	}
	if _, _, err := p.Process(context.Background(), imagingtest.JPEG(t, 10, 10), Options{Crop: Rect{20, 20, 5, 5}}); !errors.Is(err, ErrBadOptions) {
		t.Errorf("crop outside the image = %v, want ErrBadOptions", err)
	}
}

func TestProcessWaitsForSlot(t *testing.T) {
	t.Parallel()
	p := NewProcessor(testLimits, 1)
	p.sem <- struct{}{} // the only slot is busy
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := p.Process(ctx, imagingtest.JPEG(t, 10, 10), Options{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Process with no slot = %v, want context.Canceled", err)
	}
}

func TestOptionsKey(t *testing.T) {
	t.Parallel()
	a := Options{Width: 200}.Key()
	if b := (Options{Width: 200, Fit: Inside, Quality: DefaultQuality}).Key(); a != b {
		t.Errorf("Key of equal variants differ: %q, %q", a, b)
	}
	if b := (Options{Width: 200, Format: WebP}).Key(); a == b {
		t.Errorf("Key of different formats is the same: %q", a)
	}
}

func FuzzProbe(f *testing.F) {
	f.Add(withOrientation(imagingtest.JPEG(f, 8, 8), 6, binary.BigEndian))
	f.Add(imagingtest.PNG(f, 8, 8))
	f.Add(imagingtest.PNGHeader(1<<30, 1<<30))
	f.Add([]byte("\xff\xd8\xff\xe1\x00\x10Exif\x00\x00MM\x00*\x00\x00\x00\x08"))
	// Small limits keep each input cheap to decode.
	lim := Limits{MaxSourceBytes: 1 << 20, MaxSourcePixels: 1 << 16, MaxWidth: 64, MaxHeight: 64}
	f.Fuzz(func(t *testing.T, src []byte) {
		info, err := Probe(src, lim)
		if err != nil {
			return
		}
		if info.Orientation < 1 || info.Orientation > 8 {
			t.Fatalf("orientation %d", info.Orientation)
		}
		if int64(info.Width)*int64(info.Height) > lim.MaxSourcePixels {
			t.Fatalf("%d×%d passed the pixel limit", info.Width, info.Height)
		}
		if _, _, err := NewProcessor(lim, 1).Process(context.Background(), src, Options{Width: 4}); err != nil &&
			!errors.Is(err, ErrNotImage) && !errors.Is(err, ErrBadOptions) {
			t.Fatalf("Process: %v", err)
		}
	})
}

func TestWebP(t *testing.T) {
	t.Parallel()
	p := NewProcessor(testLimits, 1)
	out, f, err := p.Process(context.Background(), imagingtest.JPEG(t, 400, 300), Options{Width: 100, Format: WebP})
	if !CanEncode(WebP) {
		if !errors.Is(err, ErrBadOptions) {
			t.Fatalf("WebP output on the %s build = %v, want ErrBadOptions", Engine, err)
		}
		return
	}
	if err != nil || f != WebP {
		t.Fatalf("Process = %s, %v; want webp", f, err)
	}
	cfg, err := webp.DecodeConfig(bytes.NewReader(out))
	if err != nil || cfg.Width != 100 || cfg.Height != 75 {
		t.Fatalf("output = %+v, %v; want a 100×75 WebP", cfg, err)
	}
	// A WebP source is read too.
	out, f, err = p.Process(context.Background(), out, Options{Width: 50, Format: PNG})
	if err != nil || f != PNG {
		t.Fatalf("WebP source: %s, %v", f, err)
	}
	img, _ := decode(t, out)
	if b := img.Bounds(); b.Dx() != 50 || b.Dy() != 38 {
		t.Errorf("WebP source to PNG: %v, want 50×38", b)
	}
}
