package gateway

import (
	"cmp"
	"errors"
	"fmt"
	"net/url"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"github.com/mogway/mogway/imaging"
	"github.com/mogway/mogway/internal/conf"
)

// RouteImage turns on image variants (thumbnails) on a route, as nginx image_filter does in a
// location. A GET asks for a variant with query parameters (?w=200&h=200&fit=cover) or a path preset
// (/img/thumb/200x200/cat.jpg with a preset "thumb/200x200"); a request asking for neither gets the
// original. On a cached route every variant is a cache entry of its own, in the original's purge
// group, so purging (or overwriting) the original purges its variants.
type RouteImage struct {
	// Params names the query parameters. Defaults: w, h, fit, crop, rotate, q, format.
	Params ImageParams `yaml:"params"`
	// Query, when false, ignores the query parameters: only presets make variants. Default true.
	Query *bool `yaml:"query"`
	// Presets map a path part after the route prefix to a variant: with prefix /img/ and a preset
	// "thumb/200x200", /img/thumb/200x200/cat.jpg is that variant of /img/cat.jpg. Default none.
	Presets map[string]ImageVariant `yaml:"presets"`
	// Sizes, when set, is the allow-list of sizes a query may ask for, written WxH with 0 for "any"
	// ("200x0", "400x300"), so query strings cannot fill the cache with variants. Default: any size.
	Sizes []string `yaml:"sizes"`
	// Negotiate, when true, answers WebP to clients whose Accept lists image/webp when the request
	// names no format, and adds "Vary: Accept". Needs a build that writes WebP. Default false.
	Negotiate bool `yaml:"negotiate"`
	// NotImage is the answer when the source is not a readable image: "415" (as image_filter) or
	// "original" (the source as it is). Default "415".
	NotImage string `yaml:"not_image"`
	// Quality is the JPEG and WebP quality, 1-100, when the request names none. Default 75.
	Quality int `yaml:"quality"`
	// MaxSourceSize is the largest source transformed (nginx image_filter_buffer); a larger one gets
	// 415. Default 16MiB.
	MaxSourceSize conf.Size `yaml:"max_source_size"`
	// MaxSourcePixels is the largest width × height a source may declare in its header; a larger one
	// gets 415 before anything is decoded. Default 40000000 (40 megapixels).
	MaxSourcePixels int64 `yaml:"max_source_pixels"`
	// MaxWidth and MaxHeight bound the output size a request may ask for (400 above). Default 4096.
	MaxWidth  int `yaml:"max_width"`
	MaxHeight int `yaml:"max_height"`
	// Concurrency is how many transforms of this route run at once; others wait. Each holds up to
	// 4 bytes per source pixel plus the output. Default: the number of CPUs.
	Concurrency int `yaml:"concurrency"`
}

// ImageParams names the query parameters of image variants.
type ImageParams struct {
	Width   string `yaml:"width"`   // default "w"
	Height  string `yaml:"height"`  // default "h"
	Fit     string `yaml:"fit"`     // default "fit": inside, cover or exact
	Crop    string `yaml:"crop"`    // default "crop": x,y,w,h in source pixels
	Rotate  string `yaml:"rotate"`  // default "rotate": 0, 90, 180 or 270
	Quality string `yaml:"quality"` // default "q": 1-100
	Format  string `yaml:"format"`  // default "format": jpeg, png or webp
}

// ImageVariant is a preset variant. Fields as the query parameters; zero values as their defaults.
type ImageVariant struct {
	Width   int    `yaml:"width"`
	Height  int    `yaml:"height"`
	Fit     string `yaml:"fit"`
	Crop    string `yaml:"crop"`
	Rotate  int    `yaml:"rotate"`
	Quality int    `yaml:"quality"`
	Format  string `yaml:"format"`
}

// Image defaults.
const (
	defaultImageSourceSize   = 16 * conf.MiB
	defaultImageSourcePixels = 40_000_000
	defaultImageMaxSide      = 4096
)

func (p *ImageParams) withDefaults() ImageParams {
	d := *p
	for _, f := range []struct {
		v   *string
		def string
	}{{&d.Width, "w"}, {&d.Height, "h"}, {&d.Fit, "fit"}, {&d.Crop, "crop"}, {&d.Rotate, "rotate"},
		{&d.Quality, "q"}, {&d.Format, "format"}} {
		if *f.v == "" {
			*f.v = f.def
		}
	}
	return d
}

func (p ImageParams) names() []string {
	return []string{p.Width, p.Height, p.Fit, p.Crop, p.Rotate, p.Quality, p.Format}
}

// Validate checks the block; fields are named relative to it.
func (ri *RouteImage) Validate() error {
	var errs []error
	add := func(field, fix, format string, args ...any) {
		errs = append(errs, conf.Field(field, fix, format, args...))
	}
	names := ri.Params.withDefaults().names()
	for i, n := range names {
		if n != url.QueryEscape(n) {
			add("params", "use plain query parameter names", "%q is not a plain name", n)
		}
		if slices.Contains(names[:i], n) {
			add("params", "give each parameter its own name", "%q names two parameters", n)
		}
	}
	lim := ri.limits()
	p := imaging.NewProcessor(lim, 1)
	for name, v := range ri.Presets {
		field := "presets." + name
		if name == "" || strings.HasPrefix(name, "/") || strings.HasSuffix(name, "/") || strings.Contains(name, "//") ||
			strings.Contains(name, "..") {
			add(field, "write a path part such as thumb or thumb/200x200", "%q is not a path part", name)
		}
		o, err := v.options()
		if err == nil {
			err = p.Check(o)
		}
		if err != nil {
			add(field, "fix the variant", "%v", err)
		}
	}
	for i, s := range ri.Sizes {
		if _, _, ok := parseSize(s); !ok {
			add(fmt.Sprintf("sizes[%d]", i), "write WxH, e.g. 200x0 or 400x300", "%q is not a size", s)
		}
	}
	if ri.Negotiate && !imaging.CanEncode(imaging.WebP) {
		add("negotiate", "remove it, or run a build with libvips (make build)", "this build (%s) cannot write WebP", imaging.Engine)
	}
	if ri.NotImage != "" && ri.NotImage != "415" && ri.NotImage != "original" {
		add("not_image", `write "415" or "original"`, "%q is unknown", ri.NotImage)
	}
	if ri.Quality < 0 || ri.Quality > 100 {
		add("quality", "write 1-100", "%d is not a quality", ri.Quality)
	}
	if ri.MaxSourceSize < 0 || ri.MaxSourceSize > conf.GiB {
		add("max_source_size", "write at most 1GiB, e.g. 16MiB", "%s is not allowed", ri.MaxSourceSize)
	}
	if ri.MaxSourcePixels < 0 {
		add("max_source_pixels", "write a positive number, e.g. 40000000", "%d is negative", ri.MaxSourcePixels)
	}
	if ri.MaxWidth < 0 || ri.MaxHeight < 0 {
		add("max_width", "write a positive number, e.g. 4096", "negative")
	}
	if ri.Concurrency < 0 {
		add("concurrency", "write a positive number or leave it out", "%d is negative", ri.Concurrency)
	}
	return errors.Join(errs...)
}

func (ri *RouteImage) limits() imaging.Limits {
	lim := imaging.Limits{MaxSourceBytes: int64(ri.MaxSourceSize), MaxSourcePixels: ri.MaxSourcePixels,
		MaxWidth: ri.MaxWidth, MaxHeight: ri.MaxHeight}
	lim.MaxSourceBytes = cmp.Or(lim.MaxSourceBytes, int64(defaultImageSourceSize))
	lim.MaxSourcePixels = cmp.Or(lim.MaxSourcePixels, defaultImageSourcePixels)
	lim.MaxWidth = cmp.Or(lim.MaxWidth, defaultImageMaxSide)
	lim.MaxHeight = cmp.Or(lim.MaxHeight, defaultImageMaxSide)
	return lim
}

// options converts a preset to imaging options.
func (v ImageVariant) options() (imaging.Options, error) {
	o := imaging.Options{Width: v.Width, Height: v.Height, Fit: imaging.Fit(v.Fit), Rotate: v.Rotate, Quality: v.Quality}
	if v.Crop != "" {
		c, ok := parseCrop(v.Crop)
		if !ok {
			return o, fmt.Errorf("crop %q is not x,y,w,h", v.Crop)
		}
		o.Crop = c
	}
	if v.Format != "" {
		f, ok := imaging.ParseFormat(v.Format)
		if !ok {
			return o, fmt.Errorf("format %q is not jpeg, png or webp", v.Format)
		}
		o.Format = f
	}
	return o, nil
}

// imageRoute is a compiled RouteImage.
type imageRoute struct {
	params    ImageParams
	query     bool
	presets   []imagePreset // longest name first
	sizes     map[[2]int]bool
	negotiate bool
	original  bool // not_image: original
	quality   int
	proc      *imaging.Processor
}

type imagePreset struct {
	name string
	o    imaging.Options
}

// compileImage compiles a validated RouteImage; nil stays nil.
func compileImage(ri *RouteImage) *imageRoute {
	if ri == nil {
		return nil
	}
	ir := &imageRoute{params: ri.Params.withDefaults(), query: ri.Query == nil || *ri.Query, negotiate: ri.Negotiate,
		original: ri.NotImage == "original", quality: ri.Quality}
	for name, v := range ri.Presets {
		o, _ := v.options()
		ir.presets = append(ir.presets, imagePreset{name, o})
	}
	slices.SortFunc(ir.presets, func(a, b imagePreset) int {
		if d := len(b.name) - len(a.name); d != 0 {
			return d
		}
		return strings.Compare(a.name, b.name)
	})
	if len(ri.Sizes) > 0 {
		ir.sizes = map[[2]int]bool{}
		for _, s := range ri.Sizes {
			w, h, _ := parseSize(s)
			ir.sizes[[2]int{w, h}] = true
		}
	}
	n := ri.Concurrency
	n = cmp.Or(n, runtime.GOMAXPROCS(0))
	ir.proc = imaging.NewProcessor(ri.limits(), n)
	return ir
}

// parseSize reads "WxH" with non-negative decimal sides.
func parseSize(s string) (w, h int, ok bool) {
	a, b, found := strings.Cut(s, "x")
	if !found {
		return 0, 0, false
	}
	w, okw := parseDim(a)
	h, okh := parseDim(b)
	return w, h, okw && okh
}

// parseDim reads a non-negative decimal of at most 6 digits.
func parseDim(s string) (int, bool) {
	if s == "" || len(s) > 6 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, true
}

// parseCrop reads "x,y,w,h".
func parseCrop(s string) (imaging.Rect, bool) {
	parts := strings.Split(s, ",")
	if len(parts) != 4 {
		return imaging.Rect{}, false
	}
	var v [4]int
	for i, p := range parts {
		n, ok := parseDim(p)
		if !ok {
			return imaging.Rect{}, false
		}
		v[i] = n
	}
	if v[2] == 0 || v[3] == 0 {
		return imaging.Rect{}, false
	}
	return imaging.Rect{X: v[0], Y: v[1], W: v[2], H: v[3]}, true
}

// errImageOption is a query asking for a variant the route does not make.
var errImageOption = errors.New("gateway: bad image option")

// imageRequest is the variant a request asks for.
type imageRequest struct {
	o    imaging.Options
	orig string // the original's clean path
	vary bool   // the format came from Accept: the answer carries "Vary: Accept"
}

// variant reads the variant a request asks for. path is the request's clean path under prefix; ok is
// false when the request asks for no variant (it gets the original). A query the route refuses gives
// errImageOption.
func (ir *imageRoute) variant(prefix, path string, query url.Values, accept []byte) (req imageRequest, ok bool, err error) {
	var o imaging.Options
	orig := path
	found := false
	rest := strings.TrimPrefix(path, prefix)
	for _, p := range ir.presets {
		if after, ok := strings.CutPrefix(rest, p.name+"/"); ok && after != "" {
			o, orig, found = p.o, prefix+after, true
			break
		}
	}
	if !found && ir.query {
		if o, found, err = ir.queryOptions(query); err != nil {
			return imageRequest{}, false, err
		}
	}
	if !found {
		return imageRequest{}, false, nil
	}
	o.Quality = cmp.Or(o.Quality, ir.quality)
	vary := false
	if o.Format == "" && ir.negotiate {
		vary = true
		if acceptsWebP(accept) {
			o.Format = imaging.WebP
		}
	}
	if err := ir.proc.Check(o); err != nil {
		return imageRequest{}, false, fmt.Errorf("%w: %v", errImageOption, err)
	}
	return imageRequest{o: o, orig: orig, vary: vary}, true, nil
}

// queryOptions reads the variant from the query parameters; found is false when none is present.
func (ir *imageRoute) queryOptions(q url.Values) (o imaging.Options, found bool, err error) {
	p := ir.params
	bad := func(name, v string) error { return fmt.Errorf("%w: %s=%q", errImageOption, name, v) }
	for _, n := range p.names() {
		if q.Has(n) {
			found = true
		}
	}
	if !found {
		return o, false, nil
	}
	num := func(name string, dst *int) error {
		if v := q.Get(name); v != "" {
			n, ok := parseDim(v)
			if !ok {
				return bad(name, v)
			}
			*dst = n
		}
		return nil
	}
	for _, f := range []struct {
		name string
		dst  *int
	}{{p.Width, &o.Width}, {p.Height, &o.Height}, {p.Rotate, &o.Rotate}, {p.Quality, &o.Quality}} {
		if err := num(f.name, f.dst); err != nil {
			return o, true, err
		}
	}
	if v := q.Get(p.Fit); v != "" {
		o.Fit = imaging.Fit(v)
	}
	if v := q.Get(p.Crop); v != "" {
		c, ok := parseCrop(v)
		if !ok {
			return o, true, bad(p.Crop, v)
		}
		o.Crop = c
	}
	if v := q.Get(p.Format); v != "" {
		f, ok := imaging.ParseFormat(v)
		if !ok {
			return o, true, bad(p.Format, v)
		}
		o.Format = f
	}
	if ir.sizes != nil && !ir.sizes[[2]int{o.Width, o.Height}] {
		return o, true, fmt.Errorf("%w: size %dx%d is not in the route's sizes", errImageOption, o.Width, o.Height)
	}
	return o, true, nil
}

// acceptsWebP reports whether an Accept header lists image/webp with a non-zero quality.
func acceptsWebP(accept []byte) bool {
	for part := range strings.SplitSeq(string(accept), ",") {
		mt, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(mt), "image/webp") {
			continue
		}
		for p := range strings.SplitSeq(params, ";") {
			k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
			if strings.TrimSpace(k) == "q" {
				if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil && f == 0 {
					return false
				}
			}
		}
		return true
	}
	return false
}
