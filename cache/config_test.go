package cache

import (
	"cmp"
	"strings"
	"testing"
	"time"

	"github.com/mogway/mogway/internal/conf"
	"github.com/mogway/mogway/internal/conf/conftest"
)

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		cfg    Config
		fields []string // fields named by the errors, in any order; nil means valid
	}{
		{"zero", Config{}, nil},
		{"full", Config{Memory: conf.GiB, MemoryMaxObject: 4 * conf.MiB, SliceSize: conf.MiB,
			Disk:  DiskConfig{Path: "/var/cache/mogway", MaxSize: 100 * conf.GiB, Inactive: conf.Duration(time.Hour), Levels: "2:2", MinUses: 2},
			Valid: map[string]conf.Duration{"200": conf.Duration(time.Hour), "any": conf.Duration(time.Minute)}}, nil},
		{"max-object", Config{Memory: conf.MiB, MemoryMaxObject: 2 * conf.MiB}, []string{"memory_max_object"}},
		{"default-memory", Config{MemoryMaxObject: conf.GiB}, []string{"memory_max_object"}},
		{"disk-no-path", Config{Disk: DiskConfig{MaxSize: conf.GiB}}, []string{"disk.path"}},
		{"levels", Config{Disk: DiskConfig{Path: "/x", Levels: "1:3"}}, []string{"disk.levels"}},
		{"levels-many", Config{Disk: DiskConfig{Path: "/x", Levels: "1:1:1:1"}}, []string{"disk.levels"}},
		{"min-uses", Config{Disk: DiskConfig{Path: "/x", MinUses: -1}}, []string{"disk.min_uses"}},
		{"max-entries", Config{Disk: DiskConfig{Path: "/x", MaxEntries: -1}}, []string{"disk.max_entries"}},
		{"slice", Config{SliceSize: 100}, []string{"slice_size"}},
		{"valid", Config{Valid: map[string]conf.Duration{"2xx": 1, "99": 1, "200": 1}}, []string{"valid.2xx", "valid.99"}},
	} {
		err := tc.cfg.Validate()
		var got []string
		if _, ok := err.(interface{ Unwrap() []error }); err != nil && !ok {
			t.Errorf("%s: Validate() = %v, not a joined error", tc.name, err)
		}
		fields, others := conf.FieldErrors(err)
		for _, e := range others {
			t.Errorf("%s: error %v is not a *conf.FieldError", tc.name, e)
		}
		for _, fe := range fields {
			if fe.Fix == "" && !strings.Contains(fe.Problem, ";") {
				t.Errorf("%s: error %v gives no fix", tc.name, fe)
			}
			got = append(got, fe.Field)
		}
		if !sameSet(got, tc.fields) {
			t.Errorf("%s: Validate() names fields %v, want %v (err: %v)", tc.name, got, tc.fields, err)
		}
	}
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]int{}
	for _, s := range a {
		m[s]++
	}
	for _, s := range b {
		m[s]--
	}
	for _, n := range m {
		if n != 0 {
			return false
		}
	}
	return true
}

func TestConfigDecode(t *testing.T) {
	t.Parallel()
	var cfg Config
	err := conf.Decode("test.yaml", []byte(`
memory: 64MiB
memory_max_object: 512KiB
disk:
  path: /tmp/x
  max_size: 2GiB
  inactive: 1d
  levels: "1:2"
  min_uses: 2
slice_size: 1MiB
valid:
  "200": 30m
  any: 1m
stale_if_error: 1h
stale_while_revalidate: 30s
lock_timeout: 5s
`), &cfg)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Memory != 64*conf.MiB || cfg.Disk.Inactive.D() != 24*time.Hour || cfg.Valid["200"].D() != 30*time.Minute || cfg.LockTimeout.D() != 5*time.Second {
		t.Errorf("decoded %+v", cfg)
	}
	err = conf.Decode("test.yaml", []byte("memory_max_object: 1GiB\n"), &cfg)
	if err == nil || !strings.Contains(err.Error(), "test.yaml:1: memory_max_object") {
		t.Errorf("Decode of a bad value = %v, want an error at test.yaml:1", err)
	}
}

func TestParseLevels(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []int
	}{
		{"", []int{1, 2}}, {"1", []int{1}}, {"2:2", []int{2, 2}}, {"1:2:2", []int{1, 2, 2}},
		{"0", nil}, {"3", nil}, {"1:2:2:1", nil}, {"a", nil}, {"1:", nil}, {":", nil}, {"-1", nil},
	} {
		got, err := parseLevels(tc.in)
		if (err == nil) != (tc.want != nil) || len(got) != len(tc.want) {
			t.Errorf("parseLevels(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("parseLevels(%q) = %v, want %v", tc.in, got, tc.want)
			}
		}
	}
}

func FuzzParseLevels(f *testing.F) {
	for _, s := range []string{"", "1:2", "2", "1:1:1", "9", "1::2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		levels, err := parseLevels(s)
		if err != nil {
			return
		}
		total := 0
		for _, n := range levels {
			if n < 1 || n > 2 {
				t.Fatalf("parseLevels(%q) = %v: level out of range", s, levels)
			}
			total += n
		}
		if len(levels) == 0 || len(levels) > 3 || total > 6 {
			t.Fatalf("parseLevels(%q) = %v", s, levels)
		}
	})
}

func TestParseValidKey(t *testing.T) {
	for k, want := range map[string]int{"any": 0, "200": 200, "100": 100, "599": 599} {
		if st, ok := ParseValidKey(k); st != want || !ok {
			t.Errorf("ParseValidKey(%q) = %d, %v; want %d, true", k, st, ok, want)
		}
	}
	for _, k := range []string{"99", "600", "ANY", "2xx", ""} {
		if st, ok := ParseValidKey(k); ok {
			t.Errorf("ParseValidKey(%q) = %d, true; want false", k, st)
		}
	}
}

// TestConfigExampleDefaults checks the defaults the gateway.cache block of config.example.yaml
// states against the Default constants, applied as New and the disk tier apply them.
func TestConfigExampleDefaults(t *testing.T) {
	t.Parallel()
	conftest.CheckDefaults(t, conftest.Section{File: "../config.example.yaml", Path: "gateway.cache"},
		func(name string, data []byte) (Config, error) {
			var c Config
			if err := conf.Decode(name, data, &c); err != nil {
				return Config{}, err
			}
			c.Memory = c.Memory.Or(DefaultMemory)
			c.MemoryMaxObject = c.MemoryMaxObject.Or(DefaultMemoryMaxObject)
			if d := &c.Disk; d.Path != "" { // New opens a disk tier only with a path
				d.MaxSize = d.MaxSize.Or(DefaultDiskMaxSize)
				d.Inactive = conf.Duration(d.Inactive.Or(DefaultInactive))
				d.Levels = cmp.Or(d.Levels, DefaultLevels)
				d.MinUses = cmp.Or(d.MinUses, DefaultMinUses)
				d.MaxEntries = cmp.Or(d.MaxEntries, DefaultMaxEntries)
			}
			return c, nil
		})
}
