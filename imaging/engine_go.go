//go:build !vips

package imaging

import (
	"bytes"
	"fmt"
	"image"
	"image/draw"
	"image/gif"
	"image/jpeg"
	"image/png"

	xdraw "golang.org/x/image/draw"
	"golang.org/x/image/webp"
)

// Engine names the image library this build uses.
const Engine = "go"

// CanEncode reports whether this build writes f: the pure Go build writes JPEG and PNG.
func CanEncode(f Format) bool { return f == JPEG || f == PNG }

// transform decodes src (already probed), then orients, crops, scales, rotates and encodes it.
func transform(src []byte, info Info, o Options) ([]byte, error) {
	var img image.Image
	var err error
	r := bytes.NewReader(src)
	switch info.Format {
	case JPEG:
		img, err = jpeg.Decode(r)
	case PNG:
		img, err = png.Decode(r)
	case GIF:
		img, err = gif.Decode(r)
	case WebP:
		img, err = webp.Decode(r)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s data: %v", ErrNotImage, info.Format, err)
	}
	if info.Orientation != 1 {
		img = orient(img, info.Orientation)
	}
	b := img.Bounds()
	g, err := plan(b.Dx(), b.Dy(), o)
	if err != nil {
		return nil, err
	}
	sr := image.Rect(b.Min.X+g.src.X, b.Min.Y+g.src.Y, b.Min.X+g.src.X+g.src.W, b.Min.Y+g.src.Y+g.src.H)
	var out image.Image
	if g.w == sr.Dx() && g.h == sr.Dy() {
		out = subImage(img, sr)
	} else {
		dst := image.NewNRGBA(image.Rect(0, 0, g.w, g.h))
		// BiLinear (not ApproxBiLinear) widens its kernel when shrinking, so thumbnails do not alias.
		xdraw.BiLinear.Scale(dst, dst.Bounds(), img, sr, xdraw.Src, nil)
		out = dst
	}
	switch o.Rotate {
	case 90:
		out = orient(out, 6)
	case 180:
		out = orient(out, 3)
	case 270:
		out = orient(out, 8)
	}
	var buf bytes.Buffer
	switch o.Format {
	case JPEG:
		err = jpeg.Encode(&buf, out, &jpeg.Options{Quality: o.quality()})
	case PNG:
		err = png.Encode(&buf, out)
	default:
		return nil, fmt.Errorf("%w: this build cannot write %s", ErrBadOptions, o.Format)
	}
	if err != nil {
		return nil, fmt.Errorf("imaging: encode %s: %w", o.Format, err)
	}
	return buf.Bytes(), nil
}

// subImage is the part r of img, copied when img cannot cut it out.
func subImage(img image.Image, r image.Rectangle) image.Image {
	if r == img.Bounds() {
		return img
	}
	if s, ok := img.(interface {
		SubImage(image.Rectangle) image.Image
	}); ok {
		return s.SubImage(r)
	}
	dst := image.NewNRGBA(image.Rect(0, 0, r.Dx(), r.Dy()))
	draw.Draw(dst, dst.Bounds(), img, r.Min, draw.Src)
	return dst
}

// orient returns img turned upright from EXIF orientation o (2-8): o 6 turns it 90° clockwise,
// 3 by 180°, 8 by 270°; 2, 4, 5 and 7 mirror it as well.
func orient(img image.Image, o int) image.Image {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	dw, dh := w, h
	if o >= 5 {
		dw, dh = h, w
	}
	dst := image.NewNRGBA(image.Rect(0, 0, dw, dh))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			var dx, dy int
			switch o {
			case 2:
				dx, dy = w-1-x, y
			case 3:
				dx, dy = w-1-x, h-1-y
			case 4:
				dx, dy = x, h-1-y
			case 5:
				dx, dy = y, x
			case 6:
				dx, dy = h-1-y, x
			case 7:
				dx, dy = h-1-y, w-1-x
			case 8:
				dx, dy = y, w-1-x
			default:
				dx, dy = x, y
			}
			dst.Set(dx, dy, img.At(b.Min.X+x, b.Min.Y+y))
		}
	}
	return dst
}
