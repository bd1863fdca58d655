package httpsem

import "testing"

func TestContentType(t *testing.T) {
	tests := []struct{ name, want string }{
		{"a/b.jpg", "image/jpeg"},
		{"B.JPEG", "image/jpeg"},
		{"x.tar.gz", "application/gzip"},
		{"dir.v2/file", "application/octet-stream"},
		{"noext", "application/octet-stream"},
		{"file.", "application/octet-stream"},
		{"video.mp4", "video/mp4"},
		{"/dev1/0/000/000/0000000001.fid", "application/octet-stream"},
		{"x.averyveryverylongextension", "application/octet-stream"},
		{"", "application/octet-stream"},
	}
	for _, tt := range tests {
		if got := ContentType(tt.name); got != tt.want {
			t.Errorf("ContentType(%q) = %q, want %q", tt.name, got, tt.want)
		}
		if got := ContentType([]byte(tt.name)); got != tt.want {
			t.Errorf("ContentType([]byte(%q)) = %q, want %q", tt.name, got, tt.want)
		}
	}
}
