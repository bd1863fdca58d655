package imaging

import (
	"context"
	"fmt"
)

// Processor makes variants under Limits, at most Concurrency at a time.
type Processor struct {
	lim Limits
	sem chan struct{}
}

// NewProcessor returns a Processor running at most concurrency transforms at once (at least 1).
func NewProcessor(lim Limits, concurrency int) *Processor {
	return &Processor{lim: lim, sem: make(chan struct{}, max(concurrency, 1))}
}

// Limits returns the Processor's limits.
func (p *Processor) Limits() Limits { return p.lim }

// Check reports whether o is within the output limits, with ErrBadOptions when not.
func (p *Processor) Check(o Options) error {
	switch {
	case o.Width < 0 || o.Height < 0:
		return fmt.Errorf("%w: negative size", ErrBadOptions)
	case p.lim.MaxWidth > 0 && o.Width > p.lim.MaxWidth:
		return fmt.Errorf("%w: width %d is over %d", ErrBadOptions, o.Width, p.lim.MaxWidth)
	case p.lim.MaxHeight > 0 && o.Height > p.lim.MaxHeight:
		return fmt.Errorf("%w: height %d is over %d", ErrBadOptions, o.Height, p.lim.MaxHeight)
	case o.Fit != "" && o.Fit != Inside && o.Fit != Cover && o.Fit != Exact:
		return fmt.Errorf("%w: fit %q", ErrBadOptions, o.Fit)
	case o.Fit == Cover && (o.Width == 0 || o.Height == 0), o.Fit == Exact && (o.Width == 0 || o.Height == 0):
		return fmt.Errorf("%w: fit %s needs a width and a height", ErrBadOptions, o.Fit)
	case o.Rotate != 0 && o.Rotate != 90 && o.Rotate != 180 && o.Rotate != 270:
		return fmt.Errorf("%w: rotate %d is not 0, 90, 180 or 270", ErrBadOptions, o.Rotate)
	case o.Quality < 0 || o.Quality > 100:
		return fmt.Errorf("%w: quality %d is not 1-100", ErrBadOptions, o.Quality)
	case o.Crop.X < 0 || o.Crop.Y < 0 || o.Crop.W < 0 || o.Crop.H < 0:
		return fmt.Errorf("%w: negative crop", ErrBadOptions)
	case o.Format != "" && !CanEncode(o.Format):
		return fmt.Errorf("%w: this build cannot write %s", ErrBadOptions, o.Format)
	}
	return nil
}

// Process makes the variant o of src. It waits for a free slot until ctx is done (returning
// ctx.Err()), checks src's header against the limits before decoding it, and returns the encoded
// variant and its format. Errors wrap ErrNotImage, ErrSourceTooLarge or ErrBadOptions.
func (p *Processor) Process(ctx context.Context, src []byte, o Options) ([]byte, Format, error) {
	if err := p.Check(o); err != nil {
		return nil, "", err
	}
	info, err := Probe(src, p.lim)
	if err != nil {
		return nil, "", err
	}
	if o.Format == "" {
		o.Format = info.Format
		if o.Format == GIF || !CanEncode(o.Format) {
			o.Format = PNG
		}
	}
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, "", ctx.Err()
	}
	defer func() { <-p.sem }()
	out, err := transform(src, info, o)
	if err != nil {
		return nil, "", err
	}
	return out, o.Format, nil
}

// geometry is the plan of a transform in oriented source pixels: the crop to take (src) and the
// size it is scaled to (w × h), before the final rotation.
type geometry struct {
	src  Rect
	w, h int
}

// plan computes the geometry of o for an oriented source of sw × sh pixels.
func plan(sw, sh int, o Options) (geometry, error) {
	g := geometry{src: Rect{0, 0, sw, sh}}
	if o.Crop.W > 0 && o.Crop.H > 0 {
		c := o.Crop
		if c.X >= sw || c.Y >= sh {
			return g, fmt.Errorf("%w: crop at %d,%d is outside the %d×%d image", ErrBadOptions, c.X, c.Y, sw, sh)
		}
		c.W, c.H = min(c.W, sw-c.X), min(c.H, sh-c.Y)
		g.src = c
	}
	cw, ch := g.src.W, g.src.H
	g.w, g.h = cw, ch
	W, H := o.Width, o.Height
	if W == 0 && H == 0 {
		return g, nil
	}
	switch o.fit() {
	case Exact:
		g.w, g.h = W, H
	case Cover:
		// Scale to cover W × H, then keep the centre: the source rectangle with W × H's aspect.
		if int64(cw)*int64(H) > int64(ch)*int64(W) { // wider than the box
			nw := max(1, int(int64(ch)*int64(W)/int64(H)))
			g.src.X += (cw - nw) / 2
			g.src.W = nw
		} else {
			nh := max(1, int(int64(cw)*int64(H)/int64(W)))
			g.src.Y += (ch - nh) / 2
			g.src.H = nh
		}
		g.w, g.h = W, H
		if g.src.W < W || g.src.H < H { // never enlarge: keep the cropped source size
			g.w, g.h = g.src.W, g.src.H
		}
	default: // Inside
		if W == 0 {
			W = cw
		}
		if H == 0 {
			H = ch
		}
		if cw <= W && ch <= H {
			return g, nil
		}
		if int64(cw)*int64(H) > int64(ch)*int64(W) {
			g.w, g.h = W, max(1, int((int64(ch)*int64(W)+int64(cw)/2)/int64(cw)))
		} else {
			g.w, g.h = max(1, int((int64(cw)*int64(H)+int64(ch)/2)/int64(ch))), H
		}
	}
	return g, nil
}
