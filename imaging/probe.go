package imaging

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"

	"golang.org/x/image/webp"
)

// Info is what a source's header says, read without decoding its pixels.
type Info struct {
	Format        Format
	Width, Height int // as stored, before EXIF orientation
	// Orientation is the EXIF orientation of a JPEG, 1-8; 1 (upright) when absent or unreadable.
	Orientation int
}

// Sniff names the format of src from its first bytes; ok is false for anything else.
func Sniff(src []byte) (f Format, ok bool) {
	switch {
	case bytes.HasPrefix(src, []byte("\xff\xd8\xff")):
		return JPEG, true
	case bytes.HasPrefix(src, []byte("\x89PNG\r\n\x1a\n")):
		return PNG, true
	case bytes.HasPrefix(src, []byte("GIF87a")), bytes.HasPrefix(src, []byte("GIF89a")):
		return GIF, true
	case len(src) >= 12 && string(src[:4]) == "RIFF" && string(src[8:12]) == "WEBP":
		return WebP, true
	}
	return "", false
}

// Probe reads src's format and dimensions from its header and checks them against lim. It decodes no
// pixels, so a decompression bomb (a small file declaring a huge image) costs nothing to refuse.
func Probe(src []byte, lim Limits) (Info, error) {
	if lim.MaxSourceBytes > 0 && int64(len(src)) > lim.MaxSourceBytes {
		return Info{}, fmt.Errorf("%w: %d bytes, the limit is %d", ErrSourceTooLarge, len(src), lim.MaxSourceBytes)
	}
	f, ok := Sniff(src)
	if !ok {
		return Info{}, fmt.Errorf("%w: unknown format", ErrNotImage)
	}
	var cfg image.Config
	var err error
	r := bytes.NewReader(src)
	switch f {
	case JPEG:
		cfg, err = jpeg.DecodeConfig(r)
	case PNG:
		cfg, err = png.DecodeConfig(r)
	case GIF:
		cfg, err = gif.DecodeConfig(r)
	case WebP:
		cfg, err = webp.DecodeConfig(r)
	}
	if err != nil {
		return Info{}, fmt.Errorf("%w: %s header: %v", ErrNotImage, f, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return Info{}, fmt.Errorf("%w: %s declares %d×%d pixels", ErrNotImage, f, cfg.Width, cfg.Height)
	}
	if px := int64(cfg.Width) * int64(cfg.Height); lim.MaxSourcePixels > 0 && px > lim.MaxSourcePixels {
		return Info{}, fmt.Errorf("%w: %d×%d pixels, the limit is %d", ErrSourceTooLarge, cfg.Width, cfg.Height, lim.MaxSourcePixels)
	}
	info := Info{Format: f, Width: cfg.Width, Height: cfg.Height, Orientation: 1}
	if f == JPEG {
		info.Orientation = exifOrientation(src)
	}
	return info, nil
}

// exifOrientation is the Orientation tag (0x0112) of a JPEG's EXIF segment: 1-8, or 1 when there is
// none or it cannot be read. It reads only the segments before the image data.
func exifOrientation(src []byte) int {
	p := 2 // after SOI
	for p+4 <= len(src) {
		if src[p] != 0xff {
			return 1
		}
		marker := src[p+1]
		if marker == 0xff { // fill byte
			p++
			continue
		}
		if marker == 0xda || marker == 0xd9 { // start of scan, end of image
			return 1
		}
		n := int(binary.BigEndian.Uint16(src[p+2:]))
		if n < 2 || p+2+n > len(src) {
			return 1
		}
		seg := src[p+4 : p+2+n]
		if marker == 0xe1 && bytes.HasPrefix(seg, []byte("Exif\x00\x00")) {
			return tiffOrientation(seg[6:])
		}
		p += 2 + n
	}
	return 1
}

// tiffOrientation reads the Orientation tag from IFD0 of a TIFF header (the body of an EXIF segment).
func tiffOrientation(t []byte) int {
	if len(t) < 8 {
		return 1
	}
	var bo binary.ByteOrder
	switch string(t[:4]) {
	case "II*\x00":
		bo = binary.LittleEndian
	case "MM\x00*":
		bo = binary.BigEndian
	default:
		return 1
	}
	ifd := int64(bo.Uint32(t[4:]))
	if ifd < 8 || ifd+2 > int64(len(t)) {
		return 1
	}
	count := int64(bo.Uint16(t[ifd:]))
	for i := int64(0); i < count; i++ {
		e := ifd + 2 + 12*i
		if e+12 > int64(len(t)) {
			return 1
		}
		if bo.Uint16(t[e:]) != 0x0112 {
			continue
		}
		if bo.Uint16(t[e+2:]) != 3 { // SHORT
			return 1
		}
		if v := int(bo.Uint16(t[e+8:])); v >= 1 && v <= 8 {
			return v
		}
		return 1
	}
	return 1
}
