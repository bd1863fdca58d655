//go:build vips

package imaging

import (
	"fmt"
	"sync"

	"github.com/davidbyttow/govips/v2/vips"
)

// Engine names the image library this build uses.
const Engine = "libvips"

// CanEncode reports whether this build writes f: the libvips build writes JPEG, PNG and WebP.
func CanEncode(f Format) bool { return f == JPEG || f == PNG || f == WebP }

// startVips starts libvips once per process. libvips keeps process-wide state (its type system and
// operation cache), so this is the one piece of package-level state: a sync.Once around it. Each
// operation runs on one libvips thread (the Processor bounds how many run at once) and the operation
// cache is off, so memory is what the transforms in flight hold.
var startVips = sync.OnceFunc(func() {
	vips.LoggingSettings(func(string, vips.LogLevel, string) {}, vips.LogLevelError)
	vips.Startup(&vips.Config{ConcurrencyLevel: 1})
})

// transform decodes src (already probed) with libvips, orienting it and shrinking on load when the
// whole image is scaled, then crops, scales, rotates and encodes it.
func transform(src []byte, info Info, o Options) ([]byte, error) {
	startVips()
	ow, oh := info.Width, info.Height
	if info.Orientation >= 5 {
		ow, oh = oh, ow
	}
	g, err := plan(ow, oh, o)
	if err != nil {
		return nil, err
	}
	var img *vips.ImageRef
	if g.src == (Rect{0, 0, ow, oh}) {
		// vips_thumbnail orients by EXIF and decodes JPEGs at a reduced scale (shrink-on-load).
		img, err = vips.LoadThumbnailFromBuffer(src, g.w, g.h, vips.InterestingNone, vips.SizeForce, strict())
		if err != nil {
			return nil, fmt.Errorf("%w: %s data: %v", ErrNotImage, info.Format, err)
		}
	} else {
		img, err = vips.LoadImageFromBuffer(src, strict())
		if err != nil {
			return nil, fmt.Errorf("%w: %s data: %v", ErrNotImage, info.Format, err)
		}
		if err = img.AutoRotate(); err == nil {
			err = img.ExtractArea(g.src.X, g.src.Y, g.src.W, g.src.H)
		}
		if err == nil && (g.w != g.src.W || g.h != g.src.H) {
			err = img.ThumbnailWithSize(g.w, g.h, vips.InterestingNone, vips.SizeForce)
		}
		if err != nil {
			img.Close()
			return nil, fmt.Errorf("%w: %s data: %v", ErrNotImage, info.Format, err)
		}
	}
	defer img.Close()
	switch o.Rotate {
	case 90:
		err = img.Rotate(vips.Angle90)
	case 180:
		err = img.Rotate(vips.Angle180)
	case 270:
		err = img.Rotate(vips.Angle270)
	}
	if err != nil {
		return nil, fmt.Errorf("imaging: rotate: %w", err)
	}
	var out []byte
	switch o.Format {
	case JPEG:
		out, _, err = img.ExportJpeg(&vips.JpegExportParams{StripMetadata: true, Quality: o.quality()})
	case PNG:
		out, _, err = img.ExportPng(&vips.PngExportParams{StripMetadata: true, Compression: 6})
	case WebP:
		out, _, err = img.ExportWebp(&vips.WebpExportParams{StripMetadata: true, Quality: o.quality(), ReductionEffort: 4})
	default:
		return nil, fmt.Errorf("%w: this build cannot write %s", ErrBadOptions, o.Format)
	}
	if err != nil {
		// libvips decodes lazily, as the encoder pulls pixels: broken source data fails here.
		return nil, fmt.Errorf("%w: %s data: %v", ErrNotImage, info.Format, err)
	}
	return out, nil
}

// strict are the load options: fail on the first error in the data (a truncated JPEG) instead of
// filling in what is missing.
func strict() *vips.ImportParams { return vips.NewImportParams() }
