package cache

import (
	"bytes"
	"reflect"
	"testing"
	"time"
)

func TestHeaderRoundTrip(t *testing.T) {
	t.Parallel()
	at := time.Unix(1_700_000_000, 123)
	for _, h := range []fileHeader{
		{key: "k", group: "k", meta: Meta{Status: 200, Size: 0}},
		{key: "/a/b?c=d", group: "/a/b", bodyLen: 12345, soft: true, meta: Meta{
			Status: 404, Size: 12345, StoredAt: at, ExpiresAt: at.Add(time.Hour), ETag: `"x"`, LastModified: "Mon, 02 Jan 2006 15:04:05 GMT",
			Header: []HeaderField{{"Content-Type", "text/plain"}, {"X-Empty", ""}, {"", "odd"}},
		}},
		{key: "unknown size", group: "g", bodyLen: 7, meta: Meta{Status: 200, Size: -1}},
		{key: string([]byte{0, 1, 2, 255}), group: "\x00", meta: Meta{Status: 599, Size: 1 << 40}},
	} {
		b := encodeHeader(&h)
		got, err := parseHeader(b)
		if err != nil {
			t.Errorf("parseHeader(encodeHeader(%q)): %v", h.key, err)
			continue
		}
		h.hdrLen = int64(len(b))
		if !got.meta.StoredAt.Equal(h.meta.StoredAt) || !got.meta.ExpiresAt.Equal(h.meta.ExpiresAt) {
			t.Errorf("times of %q = %v, %v; want %v, %v", h.key, got.meta.StoredAt, got.meta.ExpiresAt, h.meta.StoredAt, h.meta.ExpiresAt)
		}
		got.meta.StoredAt, got.meta.ExpiresAt, h.meta.StoredAt, h.meta.ExpiresAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
		if len(h.meta.Header) == 0 {
			h.meta.Header = nil
		}
		if !reflect.DeepEqual(*got, h) {
			t.Errorf("parseHeader(encodeHeader(x)) = %+v, want %+v", *got, h)
		}
	}
}

func TestHeaderRejects(t *testing.T) {
	t.Parallel()
	good := encodeHeader(&fileHeader{key: "key", group: "g", meta: Meta{Status: 200, Header: []HeaderField{{"A", "b"}}}})
	mutate := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	for name, b := range map[string][]byte{
		"empty":      nil,
		"short":      good[:fixedLen-1],
		"magic":      mutate(func(b []byte) []byte { b[0] = 'X'; return b }),
		"truncated":  good[:len(good)-1],
		"extra":      append(bytes.Clone(good), 0),
		"crc":        mutate(func(b []byte) []byte { b[fixedLen] ^= 1; return b }),
		"huge-var":   mutate(func(b []byte) []byte { b[15] = 0xff; return b }),
		"neg-length": mutate(func(b []byte) []byte { b[offBodyLen+7] = 0x80; return b }),
	} {
		if _, err := parseHeader(b); err == nil {
			t.Errorf("parseHeader(%s) succeeded, want an error", name)
		}
	}
}

func FuzzParseHeader(f *testing.F) {
	f.Add(encodeHeader(&fileHeader{key: "k", group: "g", meta: Meta{Status: 200, Header: []HeaderField{{"A", "b"}}}}))
	f.Add(encodeHeader(&fileHeader{key: "", group: "", meta: Meta{Size: -1}}))
	f.Add([]byte(fileMagic))
	f.Add(encodeHeader(&fileHeader{key: "k", group: "g", meta: Meta{Status: 200, Tags: []string{"a", "b"}}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := parseHeader(b)
		if err != nil {
			return
		}
		// Whatever parses re-encodes to a header that parses to the same thing.
		h2, err := parseHeader(encodeHeader(h))
		if err != nil {
			t.Fatalf("re-encoded header does not parse: %v", err)
		}
		if h2.key != h.key || h2.group != h.group || h2.bodyLen != h.bodyLen || h2.meta.Status != h.meta.Status ||
			h2.meta.Size != h.meta.Size || len(h2.meta.Header) != len(h.meta.Header) || h2.soft != h.soft ||
			!reflect.DeepEqual(h2.meta.Tags, h.meta.Tags) {
			t.Fatalf("round trip changed the header: %+v -> %+v", h, h2)
		}
	})
}
