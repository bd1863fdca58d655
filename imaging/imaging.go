// Package imaging makes image variants (thumbnails): it checks a source against limits from its
// header alone, then decodes, orients, crops, resizes, rotates and encodes it. It knows nothing of
// HTTP or MogileFS; the gateway passes it bytes and Options.
//
// A Processor is safe for concurrent use. It bounds how many transforms run at once (each holds a
// decoded source of at most Limits.MaxSourcePixels), so its memory is bounded too.
package imaging

import (
	"errors"
	"strconv"
	"strings"
)

// Format is an image encoding.
type Format string

// Formats.
const (
	JPEG Format = "jpeg"
	PNG  Format = "png"
	WebP Format = "webp"
	GIF  Format = "gif" // read only
)

// ContentType is the media type of f.
func (f Format) ContentType() string { return "image/" + string(f) }

// ParseFormat reads a format name: jpeg (or jpg), png, webp.
func ParseFormat(s string) (Format, bool) {
	switch strings.ToLower(s) {
	case "jpeg", "jpg":
		return JPEG, true
	case "png":
		return PNG, true
	case "webp":
		return WebP, true
	}
	return "", false
}

// Fit is how a resize fills Width × Height.
type Fit string

// Fits.
const (
	// Inside scales the image to fit within Width × Height, keeping its aspect ratio (nginx
	// image_filter resize). It never enlarges.
	Inside Fit = "inside"
	// Cover scales the image to cover Width × Height, keeping its aspect ratio, and crops the
	// overflow around the centre (nginx image_filter crop).
	Cover Fit = "cover"
	// Exact scales the image to Width × Height exactly, distorting it if need be.
	Exact Fit = "exact"
)

// Rect is a crop rectangle in source pixels (after EXIF orientation).
type Rect struct{ X, Y, W, H int }

// Options describe one variant. The zero value is the source re-encoded as it is, oriented.
type Options struct {
	// Width and Height bound the output; 0 means "follow the other side's scale". Both 0: no resize.
	Width, Height int
	// Fit is the resize mode. Default Inside.
	Fit Fit
	// Crop, when its W and H are set, is cut from the oriented source before resizing.
	Crop Rect
	// Rotate turns the output clockwise by 0, 90, 180 or 270 degrees, after EXIF orientation.
	Rotate int
	// Quality is the JPEG and WebP quality, 1-100. Default DefaultQuality.
	Quality int
	// Format is the output encoding. Default: the source's (GIF sources give PNG).
	Format Format
}

// DefaultQuality is the JPEG and WebP quality when Options.Quality is 0 (nginx image_filter_jpeg_quality
// defaults to 75).
const DefaultQuality = 75

// Key is a canonical spelling of o, the same for every way of asking for the same variant: it goes
// into cache keys.
func (o Options) Key() string {
	var b strings.Builder
	b.WriteString("w=")
	b.WriteString(strconv.Itoa(o.Width))
	b.WriteString(",h=")
	b.WriteString(strconv.Itoa(o.Height))
	if o.Width != 0 || o.Height != 0 {
		b.WriteString(",fit=")
		b.WriteString(string(o.fit()))
	}
	if o.Crop.W > 0 && o.Crop.H > 0 {
		b.WriteString(",crop=")
		b.WriteString(strconv.Itoa(o.Crop.X) + "." + strconv.Itoa(o.Crop.Y) + "." + strconv.Itoa(o.Crop.W) + "." + strconv.Itoa(o.Crop.H))
	}
	b.WriteString(",r=")
	b.WriteString(strconv.Itoa(o.Rotate))
	b.WriteString(",q=")
	b.WriteString(strconv.Itoa(o.quality()))
	b.WriteString(",f=")
	b.WriteString(string(o.Format))
	return b.String()
}

func (o Options) fit() Fit {
	if o.Fit == "" {
		return Inside
	}
	return o.Fit
}

func (o Options) quality() int {
	if o.Quality == 0 {
		return DefaultQuality
	}
	return o.Quality
}

// Limits bound what a Processor accepts and makes.
type Limits struct {
	// MaxSourceBytes is the largest source accepted (nginx image_filter_buffer).
	MaxSourceBytes int64
	// MaxSourcePixels is the largest width × height a source header may declare: larger sources
	// (decompression bombs among them) are refused before anything is decoded.
	MaxSourcePixels int64
	// MaxWidth and MaxHeight bound the output dimensions asked for.
	MaxWidth, MaxHeight int
}

// Errors. Each is matched with errors.Is.
var (
	// ErrNotImage: the source is not in a format the Processor reads, or its data is broken.
	ErrNotImage = errors.New("imaging: not a readable image")
	// ErrSourceTooLarge: the source is over Limits.MaxSourceBytes or Limits.MaxSourcePixels.
	ErrSourceTooLarge = errors.New("imaging: source over the limits")
	// ErrBadOptions: the options ask for something impossible or over the output limits.
	ErrBadOptions = errors.New("imaging: bad options")
)
