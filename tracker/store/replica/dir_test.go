package replica_test

import (
	"path/filepath"
	"testing"

	"github.com/mogway/mogway/tracker/store/replica"
)

func TestDir(t *testing.T) {
	for _, tc := range []struct {
		to, want string // want "" = error
	}{
		{"file:///var/backups/mogway", "/var/backups/mogway"},
		{"file:///var/backups/mogway/", "/var/backups/mogway"},
		{"file://localhost/srv/replica", "/srv/replica"},
		{"file:///a/../b", "/b"},
		{"file:///with%20space", "/with space"},
		{"file://host/x", ""},
		{"file:relative/dir", ""},
		{"file://", ""},
		{"s3://bucket/path", ""},
		{"/var/backups", ""},
		{"", ""},
		{"file:///%zz", ""},
	} {
		got, err := replica.Dir(tc.to)
		if (err != nil) != (tc.want == "") || got != tc.want {
			t.Errorf("Dir(%q) = %q, %v; want %q", tc.to, got, err, tc.want)
		}
	}
}

func FuzzDir(f *testing.F) {
	for _, s := range []string{"file:///var/x", "file://localhost/x", "file://h/x", "s3://b/p", "file:x", "file:///a/../../b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, to string) {
		dir, err := replica.Dir(to)
		if err != nil {
			return
		}
		if !filepath.IsAbs(dir) || filepath.Clean(dir) != dir {
			t.Errorf("Dir(%q) = %q, not a clean absolute path", to, dir)
		}
	})
}
