// Package imagingtest makes small source images for tests of image variants: encoded gradients
// and hostile files that declare far more pixels than they hold. It imports no mogway package.
package imagingtest

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"testing"
)

// Gradient is a w × h gradient whose top-left quarter is red, so orientation can be checked.
func Gradient(w, h int) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			c := color.NRGBA{0, uint8(x * 255 / w), uint8(y * 255 / h), 255}
			if x < w/2 && y < h/2 {
				c = color.NRGBA{255, 0, 0, 255}
			}
			img.SetNRGBA(x, y, c)
		}
	}
	return img
}

// JPEG is Gradient(w, h) encoded as a JPEG of quality 90.
func JPEG(t testing.TB, w, h int) []byte {
	return encode(t, func(b *bytes.Buffer) error { return jpeg.Encode(b, Gradient(w, h), &jpeg.Options{Quality: 90}) })
}

// PNG is Gradient(w, h) encoded as a PNG.
func PNG(t testing.TB, w, h int) []byte {
	return encode(t, func(b *bytes.Buffer) error { return png.Encode(b, Gradient(w, h)) })
}

// GIF is Gradient(w, h) encoded as a GIF.
func GIF(t testing.TB, w, h int) []byte {
	return encode(t, func(b *bytes.Buffer) error { return gif.Encode(b, Gradient(w, h), nil) })
}

func encode(t testing.TB, enc func(*bytes.Buffer) error) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := enc(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// PNGHeader is a PNG signature and IHDR chunk declaring w × h 8-bit RGBA pixels, with nothing after
// it: a decompression bomb when w × h is large.
func PNGHeader(w, h uint32) []byte {
	chunk := binary.BigEndian.AppendUint32(nil, 13)
	chunk = append(chunk, "IHDR"...)
	chunk = binary.BigEndian.AppendUint32(chunk, w)
	chunk = binary.BigEndian.AppendUint32(chunk, h)
	chunk = append(chunk, 8, 6, 0, 0, 0)
	chunk = binary.BigEndian.AppendUint32(chunk, crc32.ChecksumIEEE(chunk[4:]))
	return append([]byte("\x89PNG\r\n\x1a\n"), chunk...)
}

// JPEGBomb is a 16 × 16 JPEG whose frame header declares 65000 × 65000 pixels.
func JPEGBomb(t testing.TB) []byte {
	t.Helper()
	b := JPEG(t, 16, 16)
	i := bytes.Index(b, []byte{0xff, 0xc0})
	if i < 0 {
		t.Fatal("imagingtest: no SOF0 marker")
	}
	binary.BigEndian.PutUint16(b[i+5:], 65000)
	binary.BigEndian.PutUint16(b[i+7:], 65000)
	return b
}
