package imagingtest

import (
	"bytes"
	"image"
	_ "image/gif"
	_ "image/jpeg"
	_ "image/png"
	"testing"
)

func TestImagesDecode(t *testing.T) {
	for _, tc := range []struct {
		format string
		src    []byte
	}{
		{"jpeg", JPEG(t, 40, 30)},
		{"png", PNG(t, 40, 30)},
		{"gif", GIF(t, 40, 30)},
	} {
		img, format, err := image.Decode(bytes.NewReader(tc.src))
		if err != nil || format != tc.format || img.Bounds() != image.Rect(0, 0, 40, 30) {
			t.Errorf("Decode(%s) = %v, %q, %v; want 40×30 %s", tc.format, img.Bounds(), format, err, tc.format)
		}
	}
}

func TestBombsDeclareManyPixels(t *testing.T) {
	for _, tc := range []struct {
		name string
		src  []byte
		w, h int
	}{
		{"PNGHeader", PNGHeader(50000, 40000), 50000, 40000},
		{"JPEGBomb", JPEGBomb(t), 65000, 65000},
	} {
		cfg, _, err := image.DecodeConfig(bytes.NewReader(tc.src))
		if err != nil || cfg.Width != tc.w || cfg.Height != tc.h {
			t.Errorf("DecodeConfig(%s) = %d×%d, %v; want %d×%d", tc.name, cfg.Width, cfg.Height, err, tc.w, tc.h)
		}
	}
}
