// Package conf holds what every role's configuration shares: human units for sizes and durations,
// strict YAML loading, and field errors that name the file, line and fix.
//
// It is a leaf package (standard library and gopkg.in/yaml.v3 only), so the role packages may use it
// without depending on one another.
package conf

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Size is a byte count written in YAML or on the command line as a plain integer or with a unit:
// "512", "64KiB", "64MiB", "1GiB", "2TiB", "10kB", "10MB" (powers of 1000), "64M" (same as MiB).
// The zero value means "use the default" wherever a Config field is a Size.
type Size int64

// Common sizes.
const (
	KiB Size = 1 << 10
	MiB Size = 1 << 20
	GiB Size = 1 << 30
	TiB Size = 1 << 40
)

var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	// Longest suffixes first so "KiB" is not read as "B".
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40},
	{"kb", 1000}, {"mb", 1000 * 1000}, {"gb", 1000 * 1000 * 1000}, {"tb", 1000 * 1000 * 1000 * 1000},
	{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"t", 1 << 40},
	{"b", 1},
}

// ParseSize parses a size such as "64MiB". Negative sizes are an error.
func ParseSize(s string) (Size, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, fmt.Errorf("empty size; write e.g. 64MiB")
	}
	lower := strings.ToLower(t)
	mult := int64(1)
	for _, u := range sizeUnits {
		if strings.HasSuffix(lower, u.suffix) {
			mult = u.mult
			lower = strings.TrimSpace(lower[:len(lower)-len(u.suffix)])
			break
		}
	}
	// A whole number is read exactly: through a float64, sizes above 2^53 came back rounded, so
	// "9007199254740993" read as ...992 and a size did not read back from its String form.
	if n, err := strconv.ParseUint(lower, 10, 64); err == nil {
		if n > uint64(maxSize/Size(mult)) {
			return 0, fmt.Errorf("size %q is too large", s)
		}
		return Size(n) * Size(mult), nil
	}
	n, err := strconv.ParseFloat(lower, 64)
	// !(n >= 0) also refuses NaN ("nan", "NaNKiB"), which converted to a negative Size.
	if err != nil || !(n >= 0) {
		return 0, fmt.Errorf("invalid size %q; write a number with an optional unit, e.g. 512KiB, 64MiB, 1GiB", s)
	}
	v := n * float64(mult)
	if v > float64(maxSize) {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return Size(v), nil
}

// maxSize is the largest size ParseSize accepts.
const maxSize Size = 1 << 62

// String formats the size with the largest binary unit that divides it exactly.
func (s Size) String() string {
	switch {
	case s == 0:
		return "0"
	case s%TiB == 0:
		return strconv.FormatInt(int64(s/TiB), 10) + "TiB"
	case s%GiB == 0:
		return strconv.FormatInt(int64(s/GiB), 10) + "GiB"
	case s%MiB == 0:
		return strconv.FormatInt(int64(s/MiB), 10) + "MiB"
	case s%KiB == 0:
		return strconv.FormatInt(int64(s/KiB), 10) + "KiB"
	}
	return strconv.FormatInt(int64(s), 10)
}

// Set implements flag.Value.
func (s *Size) Set(v string) error { return setParsed(s, v, ParseSize) }

// UnmarshalYAML implements yaml.Unmarshaler.
func (s *Size) UnmarshalYAML(n *yaml.Node) error {
	return unmarshalScalar(s, n, "a size such as 64MiB", ParseSize)
}

// MarshalYAML implements yaml.Marshaler.
func (s Size) MarshalYAML() (any, error) { return s.String(), nil }

// Duration is a time.Duration written as Go durations ("250ms", "30s", "12h") plus days ("30d").
// The zero value means "use the default" wherever a Config field is a Duration.
type Duration time.Duration

// ParseDuration parses "30s", "12h", "30d", "1d12h".
func ParseDuration(s string) (time.Duration, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, fmt.Errorf("empty duration; write e.g. 30s, 5m, 12h or 30d")
	}
	var days int64
	if i := strings.IndexByte(t, 'd'); i > 0 {
		n, err := strconv.ParseInt(t[:i], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("invalid duration %q; write e.g. 30s, 5m, 12h or 30d", s)
		}
		days, t = n, t[i+1:]
	}
	var d time.Duration
	if t != "" {
		var err error
		if d, err = time.ParseDuration(t); err != nil {
			return 0, fmt.Errorf("invalid duration %q; write e.g. 30s, 5m, 12h or 30d", s)
		}
	}
	// Days beyond time.Duration wrapped around: "213504d" read as 25m26s.
	const day = 24 * time.Hour
	if days > int64(math.MaxInt64/day) || days < -int64(math.MaxInt64/day) {
		return 0, fmt.Errorf("duration %q is too long", s)
	}
	dd := time.Duration(days) * day
	sum := dd + d
	if dd > 0 && d > 0 && sum < 0 || dd < 0 && d < 0 && sum >= 0 {
		return 0, fmt.Errorf("duration %q is too long", s)
	}
	d = sum
	if d < 0 {
		return 0, fmt.Errorf("negative duration %q", s)
	}
	return d, nil
}

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Or returns d, or def when d is zero.
func (d Duration) Or(def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return time.Duration(d)
}

// Or returns s, or def when s is zero.
func (s Size) Or(def Size) Size {
	if s == 0 {
		return def
	}
	return s
}

// String formats the duration, using days when it is a whole number of them.
func (d Duration) String() string {
	td := time.Duration(d)
	if td != 0 && td%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(td/(24*time.Hour)), 10) + "d"
	}
	return td.String()
}

// Set implements flag.Value.
func (d *Duration) Set(v string) error { return setParsed(d, v, parseDurationValue) }

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	return unmarshalScalar(d, n, "a duration such as 30s", parseDurationValue)
}

// MarshalYAML implements yaml.Marshaler.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

func parseDurationValue(s string) (Duration, error) {
	d, err := ParseDuration(s)
	return Duration(d), err
}

// setParsed stores parse(v) in dst, or leaves dst alone and returns parse's error.
func setParsed[T any](dst *T, v string, parse func(string) (T, error)) error {
	x, err := parse(v)
	if err != nil {
		return err
	}
	*dst = x
	return nil
}

// unmarshalScalar decodes the YAML scalar n with parse into dst; what names the expected form in
// the error for anything else. Errors carry n's line.
func unmarshalScalar[T any](dst *T, n *yaml.Node, what string, parse func(string) (T, error)) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: expected %s", n.Line, what)
	}
	if err := setParsed(dst, n.Value, parse); err != nil {
		return fmt.Errorf("line %d: %v", n.Line, err)
	}
	return nil
}
