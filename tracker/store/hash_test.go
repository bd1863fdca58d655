package store

import (
	"encoding/hex"
	"testing"
)

func TestHash(t *testing.T) {
	tests := []struct {
		h        Hash
		name     string
		size     int
		emptyHex string // digest of no bytes; "" when New returns nil
	}{
		{HashNone, "NONE", 0, ""},
		{HashMD5, "MD5", 16, "d41d8cd98f00b204e9800998ecf8427e"},
		{HashSHA1, "SHA-1", 20, "da39a3ee5e6b4b0d3255bfef95601890afd80709"},
		{Hash(3), "NONE", 0, ""},
		{Hash(-1), "NONE", 0, ""},
	}
	for _, tt := range tests {
		if got := tt.h.String(); got != tt.name {
			t.Errorf("Hash(%d).String() = %q, want %q", int(tt.h), got, tt.name)
		}
		if got := tt.h.Size(); got != tt.size {
			t.Errorf("Hash(%d).Size() = %d, want %d", int(tt.h), got, tt.size)
		}
		d := tt.h.New()
		switch {
		case tt.emptyHex == "" && d != nil:
			t.Errorf("Hash(%d).New() = %T, want nil", int(tt.h), d)
		case tt.emptyHex != "" && d == nil:
			t.Errorf("Hash(%d).New() = nil, want a digest", int(tt.h))
		case d != nil:
			if got := hex.EncodeToString(d.Sum(nil)); got != tt.emptyHex {
				t.Errorf("Hash(%d).New().Sum(nil) = %s, want %s", int(tt.h), got, tt.emptyHex)
			}
			if d.Size() != tt.size {
				t.Errorf("Hash(%d).New().Size() = %d, want %d", int(tt.h), d.Size(), tt.size)
			}
		}
	}
}

func TestParseHash(t *testing.T) {
	tests := []struct {
		name string
		want Hash
		ok   bool
	}{
		{"MD5", HashMD5, true},
		{"SHA-1", HashSHA1, true},
		{"md5", HashNone, false},
		{"SHA1", HashNone, false},
		{"NONE", HashNone, false},
		{"", HashNone, false},
	}
	for _, tt := range tests {
		got, ok := ParseHash(tt.name)
		if got != tt.want || ok != tt.ok {
			t.Errorf("ParseHash(%q) = %v, %v; want %v, %v", tt.name, got, ok, tt.want, tt.ok)
		}
	}
}
