package httpsem

import "testing"

func TestContentType(t *testing.T) {
	for name, want := range map[string]string{
		"a/b.jpg":                        "image/jpeg",
		"B.JPEG":                         "image/jpeg",
		"x.tar.gz":                       "application/gzip",
		"video.mp4":                      "video/mp4",
		"dir.v2/file":                    DefaultType,
		"noext":                          DefaultType,
		"file.":                          DefaultType,
		"/dev1/0/000/000/0000000001.fid": DefaultType,
		"x.averyveryverylongextension":   DefaultType,
		"":                               DefaultType,
	} {
		got, gotBytes := ContentType(name), ContentType([]byte(name))
		if got != want || gotBytes != want {
			t.Errorf("ContentType(%q) = %q (from []byte: %q), want %q", name, got, gotBytes, want)
		}
	}
}
