package cache

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/mogway/mogway/internal/conf"
)

// Defaults applied for zero Config fields.
const (
	DefaultMemory          = 256 * conf.MiB
	DefaultMemoryMaxObject = 1 * conf.MiB
	DefaultDiskMaxSize     = 10 * conf.GiB
	DefaultInactive        = 10 * time.Minute
	DefaultLevels          = "1:2"
	DefaultMinUses         = 1
	DefaultMaxEntries      = 1_000_000
)

// Config is the `cache:` block of the gateway section. The zero value is a memory-only cache of
// 256MiB that keeps 200, 301 and 302 answers for 10 minutes and 404 answers for 1 minute.
type Config struct {
	// Memory is the byte budget of the memory tier, including the buffers of fills in progress;
	// default 256MiB.
	Memory conf.Size `yaml:"memory"`
	// MemoryMaxObject is the largest body kept in the memory tier; larger bodies go to disk only;
	// default 1MiB.
	MemoryMaxObject conf.Size `yaml:"memory_max_object"`
	// Disk configures the disk tier; default: no disk tier.
	Disk DiskConfig `yaml:"disk"`
	// SliceSize is the length of the slices GetRange caches large objects in; default 0 (Range
	// requests are served from whole entries only).
	SliceSize conf.Size `yaml:"slice_size"`
	// Valid maps a status code ("200", "404") or "any" to how long an answer with that status stays
	// fresh when the fill does not set Meta.ExpiresAt; default {200: 10m, 301: 10m, 302: 10m, 404: 1m}.
	// A status with no entry (and no "any") is not stored.
	Valid map[string]conf.Duration `yaml:"valid"`
	// StaleIfError is how long past expiry an entry may still be served when its refresh fails;
	// default 0 (never).
	StaleIfError conf.Duration `yaml:"stale_if_error"`
	// StaleWhileRevalidate is how long past expiry an entry is served at once while one background
	// fill refreshes it; default 0 (never).
	StaleWhileRevalidate conf.Duration `yaml:"stale_while_revalidate"`
	// LockTimeout is how long Get waits for a fill in progress to produce its status and headers
	// before it returns ErrLockTimeout; default 0 (wait as long as the caller's context allows).
	LockTimeout conf.Duration `yaml:"lock_timeout"`
}

// DiskConfig is the `cache.disk:` block.
type DiskConfig struct {
	// Path is the directory holding the cache files; default "" (no disk tier).
	Path string `yaml:"path"`
	// MaxSize bounds the bytes of all cache files (headers included); default 10GiB.
	MaxSize conf.Size `yaml:"max_size"`
	// Inactive removes entries not requested for this long, fresh or not; default 10m.
	Inactive conf.Duration `yaml:"inactive"`
	// Levels is the directory hierarchy, as in nginx: one to three colon-separated levels of 1 or 2
	// hex digits each; default "1:2".
	Levels string `yaml:"levels"`
	// MinUses is the number of requests for a key after which its answer is written to disk;
	// default 1.
	MinUses int `yaml:"min_uses"`
	// MaxEntries bounds the number of files, since the index of every file stays in memory (a few
	// hundred bytes each); default 1000000.
	MaxEntries int `yaml:"max_entries"`
}

// Validate checks the block; errors are *conf.FieldError values naming the field and the fix.
func (c *Config) Validate() error {
	var p conf.Problems
	mem, maxObj := c.Memory.Or(DefaultMemory), c.MemoryMaxObject.Or(DefaultMemoryMaxObject)
	if maxObj > mem {
		p.Add("memory_max_object", "make it at most memory ("+mem.String()+")",
			"%s is larger than the memory tier", maxObj)
	}
	if c.Disk.Path != "" || c.Disk.MaxSize != 0 || c.Disk.Inactive != 0 || c.Disk.Levels != "" || c.Disk.MinUses != 0 || c.Disk.MaxEntries != 0 {
		p.AddErr(conf.Within("disk", c.Disk.validate()))
	}
	if c.SliceSize != 0 && c.SliceSize < 4*conf.KiB {
		p.Add("slice_size", "use at least 4KiB, e.g. 1MiB, or 0 to turn slicing off",
			"%s is too small", c.SliceSize)
	}
	for k := range c.Valid {
		if _, ok := ParseValidKey(k); !ok {
			p.Add("valid."+k, `write a status code such as "200" or "404", or "any"`,
				"%q is not a status code", k)
		}
	}
	return p.Err()
}

func (d *DiskConfig) validate() error {
	var p conf.Problems
	if d.Path == "" {
		p.Add("path", "set the cache directory, e.g. /var/cache/mogway",
			"the disk tier needs a path")
	}
	if _, err := parseLevels(d.Levels); err != nil {
		p.Add("levels", `write e.g. "1:2" (one to three levels of 1 or 2 digits)`,
			"%v", err)
	}
	p.NotNegative("min_uses", d.MinUses, "use 1 or more")
	p.NotNegative("max_entries", d.MaxEntries, "use 1 or more, or leave it out for 1000000")
	return p.Err()
}

// ParseValidKey reads a key of a valid map: a status code from 100 to 599, or "any" (0). The
// gateway's per-route valid maps use it too, so both read the same keys.
func ParseValidKey(k string) (int, bool) {
	if k == "any" {
		return 0, true
	}
	n, err := strconv.Atoi(k)
	if err != nil || n < 100 || n > 599 {
		return 0, false
	}
	return n, true
}

// parseLevels parses nginx-style levels; "" means DefaultLevels.
func parseLevels(s string) ([]int, error) {
	if s == "" {
		s = DefaultLevels
	}
	parts := strings.Split(s, ":")
	if len(parts) > 3 {
		return nil, errors.New("at most three levels")
	}
	out := make([]int, 0, len(parts))
	for _, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 2 {
			return nil, errors.New("each level is 1 or 2 hex digits, got " + strconv.Quote(p))
		}
		out = append(out, n)
	}
	return out, nil
}

// validity holds Valid resolved to durations.
type validity struct {
	byStatus map[int]time.Duration
	anyOK    bool
	any      time.Duration
}

func newValidity(m map[string]conf.Duration) validity {
	v := validity{byStatus: map[int]time.Duration{}}
	if len(m) == 0 {
		v.byStatus[200] = 10 * time.Minute
		v.byStatus[301] = 10 * time.Minute
		v.byStatus[302] = 10 * time.Minute
		v.byStatus[404] = time.Minute
		return v
	}
	for k, d := range m {
		st, _ := ParseValidKey(k)
		if st == 0 {
			v.anyOK, v.any = true, d.D()
			continue
		}
		v.byStatus[st] = d.D()
	}
	return v
}

// forStatus returns how long an answer with status stays fresh, and false when it is not stored.
func (v validity) forStatus(status int) (time.Duration, bool) {
	if d, ok := v.byStatus[status]; ok {
		return d, d > 0
	}
	if v.anyOK {
		return v.any, v.any > 0
	}
	return 0, false
}
