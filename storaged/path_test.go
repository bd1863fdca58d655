package storaged

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestHostilePaths: requests that try to leave the docroot or smuggle bytes are refused and
// touch nothing, inside or outside the docroot.
func TestHostilePaths(t *testing.T) {
	t.Parallel()
	n := startNode(t, nil)
	outside := t.TempDir()
	secret := filepath.Join(outside, "secret")
	if err := os.WriteFile(secret, []byte("secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	dev1 := filepath.Join(n.docroot, "dev1")
	os.WriteFile(filepath.Join(dev1, "real.fid"), []byte("ok"), 0o644)
	if err := os.Symlink(outside, filepath.Join(dev1, "out")); err != nil {
		t.Fatal(err)
	}
	os.Symlink(secret, filepath.Join(dev1, "outfile"))
	snapshot := func(dir string) []string {
		var names []string
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !strings.HasPrefix(filepath.Base(p), "usage") {
				names = append(names, p)
			}
			return nil
		})
		return names
	}
	beforeIn, beforeOut := snapshot(n.docroot), snapshot(outside)

	const body = "\r\nContent-Length: 1\r\n\r\nx"
	tests := []struct {
		req  string
		want []int // any of these
	}{
		{"GET /dev1/../../etc/passwd HTTP/1.0\r\n\r\n", []int{403}},
		{"GET /dev1/%2e%2e/%2e%2e/etc/passwd HTTP/1.0\r\n\r\n", []int{403}},
		{"GET /dev1/%2E%2E/real.fid HTTP/1.0\r\n\r\n", []int{403}},
		{"GET /../etc/passwd HTTP/1.0\r\n\r\n", []int{403}},
		{"GET /dev1/real.fid/.. HTTP/1.0\r\n\r\n", []int{403}},
		{"GET /dev1/a%00b HTTP/1.0\r\n\r\n", []int{400}},
		{"GET /dev1/real.fid%00.txt HTTP/1.0\r\n\r\n", []int{400}},
		{"GET /dev1/..%5c..%5cetc%5cpasswd HTTP/1.0\r\n\r\n", []int{400}},
		{"GET /dev1/a\\..\\..\\x HTTP/1.0\r\n\r\n", []int{400}},
		{"GET /dev1/bad%zz HTTP/1.0\r\n\r\n", []int{400}},
		{"GET /dev1/bad% HTTP/1.0\r\n\r\n", []int{400}},
		{"GET etc/passwd HTTP/1.0\r\n\r\n", []int{400, 403}},
		{"GET /etc/passwd HTTP/1.0\r\n\r\n", []int{404}},
		{"GET /dev1/%2fetc/passwd HTTP/1.0\r\n\r\n", []int{404}},
		{"GET /dev1/out/secret HTTP/1.0\r\n\r\n", []int{403}},
		{"GET /dev1/outfile HTTP/1.0\r\n\r\n", []int{403}},
		{"GET /dev1/real.fid/x HTTP/1.0\r\n\r\n", []int{404}},
		{"PUT /dev1/../x" + " HTTP/1.0" + body, []int{400}},
		{"PUT /dev1/%2e%2e/x HTTP/1.0" + body, []int{400}},
		{"PUT /dev1/a%20b HTTP/1.0" + body, []int{400}}, // spec 8.6 #74
		{"PUT /dev1/a?x=1 HTTP/1.0" + body, []int{400}},
		{"PUT //dev1/x HTTP/1.0" + body, []int{400}},
		{"PUT /dev1/./x HTTP/1.0" + body, []int{400}},
		{"PUT /dev1/x/ HTTP/1.0" + body, []int{400}},
		{"PUT /dev1\\..\\x HTTP/1.0" + body, []int{400}},
		{"PUT /dev1/x%00 HTTP/1.0" + body, []int{400}},
		{"PUT /dev1/out/x.fid HTTP/1.0" + body, []int{403}},
		{"PUT /dev1/outfile HTTP/1.0" + body, []int{403}},
		{"PUT /dev1/real.fid/x HTTP/1.0" + body, []int{403}},
		{"PUT /etc/x HTTP/1.0" + body, []int{404}},
		{"DELETE /dev1/outfile HTTP/1.0\r\n\r\n", []int{400}},
		{"DELETE /dev1/out/secret HTTP/1.0\r\n\r\n", []int{403}},
		{"DELETE /dev1/%2e%2e/real.fid HTTP/1.0\r\n\r\n", []int{400}},
		{"DELETE /dev1/../dev1/real.fid HTTP/1.0\r\n\r\n", []int{400}},
	}
	for _, tt := range tests {
		resp, _ := n.raw(t, tt.req)
		if !slices.Contains(tt.want, resp.StatusCode) {
			t.Errorf("%s = %d, want one of %v", firstLine(tt.req), resp.StatusCode, tt.want)
		}
	}
	if got := snapshot(n.docroot); !slices.Equal(got, beforeIn) {
		t.Errorf("docroot changed:\n got %v\nwant %v", got, beforeIn)
	}
	if got := snapshot(outside); !slices.Equal(got, beforeOut) {
		t.Errorf("outside directory changed:\n got %v\nwant %v", got, beforeOut)
	}
	if b, _ := os.ReadFile(secret); string(b) != "secret" {
		t.Errorf("secret = %q, want %q", b, "secret")
	}
}

func TestReadPath(t *testing.T) {
	tests := []struct {
		raw, want string
		err       error
	}{
		{"/dev1/0/000/000/0000000001.fid", "dev1/0/000/000/0000000001.fid", nil},
		{"//dev1/usage", "dev1/usage", nil},
		{"/dev1/./usage?x=1", "dev1/usage", nil},
		{"/", "", nil},
		{"http://10.0.0.1:7500/dev1/usage", "dev1/usage", nil},
		{"/dev1/a%20b", "dev1/a b", nil},
		{"/dev1/a+b", "dev1/a+b", nil},
		{"/dev1/..", "", errForbidden},
		{"dev1/x", "", errForbidden},
		{"/dev1/%2E%2e/x", "", errForbidden},
		{"/dev1/%00", "", errBadPath},
		{"/dev1/%5c", "", errBadPath},
		{"/dev1/%g0", "", errBadPath},
		{"/dev1/", "dev1", nil},
		{"/dev1/.", "dev1", nil},
		{"/dev1/x/..", "", errForbidden},
		{"/.", "", nil},
	}
	for _, tt := range tests {
		got, err := readPath(tt.raw)
		if got != tt.want || err != tt.err {
			t.Errorf("readPath(%q) = %q, %v; want %q, %v", tt.raw, got, err, tt.want, tt.err)
		}
	}
}

func TestReadPathAllocs(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() { readPath("/dev1/0/000/000/0000000001.fid") }); n != 0 {
		t.Errorf("readPath of a clean path: %v allocations, want 0", n)
	}
}

func TestWritePath(t *testing.T) {
	tests := []struct {
		raw, want string
		err       error
	}{
		{"/dev1/0/000/000/0000000099.fid", "dev1/0/000/000/0000000099.fid", nil},
		{"/dev12/test-write/test-write-7", "dev12/test-write/test-write-7", nil},
		{"/dev1/x_y-z.A", "dev1/x_y-z.A", nil},
		{"/dev1", "", errBadPath},
		{"/dev1/", "", errBadPath},
		{"/devx/a", "", errNoDevice},
		{"/usage/a", "", errNoDevice},
		{"/dev1/a%20b", "", errBadPath},
		{"/dev1/a?x=1", "", errBadPath},
		{"/dev1/../x", "", errBadPath},
		{"/dev1/a..b", "", errBadPath},
		{"/dev1//x", "", errBadPath},
		{"/dev1/./x", "", errBadPath},
		{"dev1/x", "", errBadPath},
		{"", "", errBadPath},
	}
	for _, tt := range tests {
		got, err := writePath(tt.raw)
		if got != tt.want || err != tt.err {
			t.Errorf("writePath(%q) = %q, %v; want %q, %v", tt.raw, got, err, tt.want, tt.err)
		}
	}
}

func FuzzReadPath(f *testing.F) {
	for _, s := range []string{"/dev1/x", "//dev1/usage", "/dev1/%2e%2e/x", "/a/../b", "/%", "http://h/dev1/x?q"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		rel, err := readPath(raw)
		if err != nil {
			return
		}
		if strings.ContainsAny(rel, "\x00\\") || !cleanRel(rel) {
			t.Fatalf("readPath(%q) = %q: not a clean relative path", raw, rel)
		}
	})
}

func FuzzWritePath(f *testing.F) {
	for _, s := range []string{"/dev1/0/000/000/0000000001.fid", "/dev1/../x", "/dev1/a%20b", "/dev1//x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		rel, err := writePath(raw)
		if err != nil {
			return
		}
		dev, _, ok := strings.Cut(rel, "/")
		if !ok || !isDevName(dev) || !cleanRel(rel) || strings.Contains(rel, "..") {
			t.Fatalf("writePath(%q) = %q: not a clean path below a dev<N>", raw, rel)
		}
	})
}

// cleanRel reports whether rel is "" or slash-separated segments none of which is "", "." or "..".
// (Unlike fs.ValidPath it allows any bytes: Linux file names need not be UTF-8.)
func cleanRel(rel string) bool {
	if rel == "" {
		return true
	}
	for _, s := range strings.Split(rel, "/") {
		if s == "" || s == "." || s == ".." {
			return false
		}
	}
	return true
}

// TestSymlinkedDevice: a dev<N> that is a symlink made by the administrator (to a disk mounted
// elsewhere) is a device like any other; symlinks inside it still cannot leave it.
func TestSymlinkedDevice(t *testing.T) {
	t.Parallel()
	n := startNode(t, nil)
	disk := t.TempDir()
	if err := os.Symlink(disk, filepath.Join(n.docroot, "dev3")); err != nil {
		t.Fatal(err)
	}
	if got := n.put(t, "/dev3/0/000/000/0000000003.fid", []byte("on dev3"), nil); got != 200 {
		t.Fatalf("PUT on a symlinked device = %d, want 200", got)
	}
	if b, err := os.ReadFile(filepath.Join(disk, "0/000/000/0000000003.fid")); err != nil || string(b) != "on dev3" {
		t.Errorf("file on the disk = %q, %v; want %q", b, err, "on dev3")
	}
	if resp, body := n.get(t, "GET", "/dev3/0/000/000/0000000003.fid", nil); resp.StatusCode != 200 || body != "on dev3" {
		t.Errorf("GET = %d %q, want 200 %q", resp.StatusCode, body, "on dev3")
	}
	os.Symlink(filepath.Join(n.docroot, "dev1"), filepath.Join(disk, "todev1"))
	if resp, _ := n.get(t, "GET", "/dev3/todev1/usage", nil); resp.StatusCode != 403 {
		t.Errorf("GET through a symlink from dev3 to dev1 = %d, want 403", resp.StatusCode)
	}
	if resp, body := n.get(t, "GET", HealthPath, nil); resp.StatusCode != 200 || !strings.Contains(body, "dev3: ok") {
		t.Errorf("GET %s = %d %q, want 200 listing dev3", HealthPath, resp.StatusCode, body)
	}
}
