package tracker

import (
	"strings"
	"testing"
)

// TestKeyBytes pins which bytes a key may hold (docs/tracker.md, "Keys"): like the Perl tracker,
// which decodes %XX and stores `$args->{key}` without a check, any non-empty byte string of at most
// 255 bytes is a key, control bytes and invalid UTF-8 included. They travel %XX-encoded both ways,
// so the line framing never sees them.
func TestKeyBytes(t *testing.T) {
	c := startCluster(t)
	lc := c.lc
	keys := []struct{ key, wire string }{
		{"line\nfeed", "line%0Afeed"},
		{"carriage\rreturn", "carriage%0Dreturn"},
		{"nul\x00byte", "nul%00byte"},
		{"tab\tbell\a", "tab%09bell%07"},
		{"\x7fdel", "%7Fdel"},
		{"bad\xffutf8", "bad%FFutf8"},
		{"\n", "%0A"},
	}
	for _, k := range keys {
		c.upload(t, k.key, "c1", []byte("x"))
	}
	runExchanges(t, lc, []exchange{
		{"list_keys domain=d&prefix=line", "OK key_count=1&key_1=line%0Afeed&next_after=line%0Afeed"},
		{"list_keys domain=d&prefix=nul%00", "OK key_count=1&key_1=nul%00byte&next_after=nul%00byte"},
		{"list_keys domain=d&prefix=%0A", "OK key_count=1&key_1=%0A&next_after=%0A"},
		{"list_keys domain=d&limit=1000", "~^OK key_count=7&"},
		// A repeated name joins its values with NUL (spec 2.2 step 4): this names "nul\x00byte".
		{"file_info domain=d&key=nul&key=byte", "~^OK fid=\\d+&domain=d&class=c1&key=nul%00byte&length=1&devcount=1$"},
		{"rename domain=d&from_key=carriage%0Dreturn&to_key=new%0D%0Aline", "OK "},
		{"file_info domain=d&key=new%0D%0Aline", "~&key=new%0D%0Aline&"},
		{"delete domain=d&key=new%0D%0Aline", "OK "},
		{"create_open domain=d&class=c1&key=" + strings.Repeat("%0A", 256), "ERR bad_params Key+longer+than+255+bytes"},
	})
	for _, k := range keys {
		if k.key == "carriage\rreturn" {
			continue // renamed and deleted above
		}
		if got := lc.do("file_info domain=d&key=" + escape(k.key)); !strings.Contains(got, "&key="+k.wire+"&") {
			t.Errorf("file_info %q = %q, want key=%s", k.key, got, k.wire)
		}
		if a := lc.ok("get_paths domain=d&key=" + escape(k.key)); a.Get("paths") != "1" {
			t.Errorf("get_paths %q = %v, want 1 path", k.key, a)
		}
	}
}
