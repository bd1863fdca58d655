package tracker

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mogway/mogway/tracker/store"
)

// checkReply asserts the reply grammar of spec 8.1 #16: one line ending in CRLF, "OK " plus an
// argument string with no raw space, no empty '&' segment and '=' in every pair, or
// "ERR code message[ callid]".
func checkReply(t *testing.T, req string, out []byte) {
	t.Helper()
	if !bytes.HasSuffix(out, []byte("\r\n")) || bytes.Count(out, []byte("\n")) != 1 || bytes.Count(out, []byte("\r")) != 1 {
		t.Fatalf("%q: reply %q is not one CRLF line", req, out)
	}
	line := string(out[:len(out)-2])
	switch {
	case strings.HasPrefix(line, "OK "):
		args := line[3:]
		if strings.ContainsAny(args, " \t") {
			t.Fatalf("%q: reply %q has a space in its arguments", req, out)
		}
		if args == "" {
			return
		}
		for _, seg := range strings.Split(args, "&") {
			if seg == "" || !strings.Contains(seg, "=") {
				t.Fatalf("%q: reply %q has a bad segment %q", req, out, seg)
			}
		}
	case strings.HasPrefix(line, "ERR "):
		f := strings.Split(line, " ")
		if len(f) < 3 || len(f) > 4 || f[1] == "" || f[2] == "" {
			t.Fatalf("%q: reply %q is not ERR code message", req, out)
		}
		for _, c := range f[1] {
			if !(c == '_' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c >= 'A' && c <= 'Z') {
				t.Fatalf("%q: ERR code %q is not a word", req, f[1])
			}
		}
	default:
		t.Fatalf("%q: reply %q is neither OK nor ERR", req, out)
	}
}

// FuzzDispatch feeds arbitrary request lines to the command dispatcher: it never panics and every
// reply is one well-formed line. The seeds cover every command.
func FuzzDispatch(f *testing.F) {
	for c := range commands {
		f.Add(c + " domain=d&key=k&class=c1&fid=1&devid=1&path=x&host=h1&device=1&state=down&from_key=k&to_key=k2&callid=%20")
	}
	for _, s := range []string{
		"noop", "create_open domain=d&key=k&multi_dest=1&size=99999999999999999999",
		"create_close domain=d&fid=-1&devid=-1&path=http://&checksum=SHA-1:" + strings.Repeat("a", 40),
		"list_keys domain=d&prefix=%&after=%25&limit=-5", "list_fids from=-9&to=-1",
		"get_paths domain=d&key=%00&pathcount=99999999999999999999", "file_debug fid=-1",
		"create_device hostid=1&devid=99999999999", "set_weight host=h1&device=1&weight=99999999999",
		"create_class domain=d&class=z&mindevcount=999", "set_server_setting key=zone_a&value=10.0.0.0/8,x",
		"rename domain=d&from_key=k&to_key=" + strings.Repeat("x", 300),
	} {
		f.Add(s)
	}
	tt := startTracker(f, Config{})
	lc := tt.dial(f)
	fixture(f, lc, "10.0.0.1", "7500", "10.0.0.2", "7500")
	// Admin mutations (create_*, delete_*, set_*) may change the fixture; that is fine: the fuzzer
	// checks the reply grammar and that nothing panics.
	f.Fuzz(func(t *testing.T, line string) {
		if strings.ContainsAny(line, "\r\n") || line == "" || line[0] == '!' {
			return // the connection splits lines and handles ! itself
		}
		if lower := strings.ToLower(line); strings.HasPrefix(lower, "clear_cache") || strings.HasPrefix(lower, "do_monitor_round") || strings.HasPrefix(lower, "sleep") {
			return // these wait by design
		}
		out := tt.s.dispatch(context.Background(), nil, line, nil)
		checkReply(t, line, out)
	})
}

// TestFuzzCorpusOverConnection replays the checked-in corpus, plus binary garbage, over a real
// connection: each line gets one reply and the connection stays usable.
func TestFuzzCorpusOverConnection(t *testing.T) {
	tt := startTracker(t, Config{})
	lc := tt.dial(t)
	fixture(t, lc, "10.0.0.1", "7500", "10.0.0.2", "7500")
	lines := []string{"\x00\x01\x02", "%%%", "get_paths \xff\xfe", "create_open domain=d&key=\x00", "=&=&&&0&0=0", "list_keys domain=d&prefix=\\"}
	entries, _ := os.ReadDir(filepath.Join("testdata", "fuzz", "FuzzDispatch"))
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("testdata", "fuzz", "FuzzDispatch", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "string(") {
				if s, ok := unquoteCorpus(l); ok {
					lines = append(lines, s)
				}
			}
		}
	}
	for _, l := range lines {
		if strings.ContainsAny(l, "\r\n") || l == "" || l[0] == '!' {
			continue
		}
		lc.write(l + "\r\n")
		got := lc.readLine()
		checkReply(t, l, []byte(got+"\r\n"))
	}
	lc.ok("noop")
}

func unquoteCorpus(l string) (string, bool) {
	l = strings.TrimSuffix(strings.TrimPrefix(l, "string("), ")")
	if len(l) < 2 || l[0] != '"' {
		return "", false
	}
	var out strings.Builder
	r := strings.NewReplacer(`\"`, `"`, `\\`, `\`)
	out.WriteString(r.Replace(l[1 : len(l)-1]))
	return out.String(), true
}

// TestBadInputChangesNothing: malformed or refused commands leave the store as it was.
func TestBadInputChangesNothing(t *testing.T) {
	tt := startTracker(t, Config{})
	lc := tt.dial(t)
	fixture(t, lc, "10.0.0.1", "7500", "10.0.0.2", "7500")
	snap := func() string {
		ctx := context.Background()
		var b strings.Builder
		d, _ := tt.st.Domains(ctx)
		c, _ := tt.st.Classes(ctx)
		h, _ := tt.st.Hosts(ctx)
		dv, _ := tt.st.Devices(ctx)
		s, _ := tt.st.Settings(ctx)
		mf, _ := tt.st.MaxFid(ctx)
		n, _ := tt.st.QueueLen(ctx, store.QueueDelete)
		for _, v := range []any{d, c, h, dv, s, mf, n} {
			b.WriteString(strings.TrimSpace(strings.ReplaceAll(fmtAny(v), "\n", " ")))
			b.WriteString("|")
		}
		return b.String()
	}
	before := snap()
	for _, req := range []string{
		"create_open domain=nope&key=k",
		"create_open domain=d&key=k&class=nope",
		"create_open domain=d&key=k",
		"create_open domain=d&key=" + strings.Repeat("k", 256),
		"create_close domain=d&fid=1&devid=1&path=http://10.0.0.1:7500/dev1/0/000/000/0000000001.fid&key=k",
		"create_close domain=d&fid=1&devid=9&path=x&key=k",
		"create_class domain=d&class=c9&mindevcount=0",
		"create_class domain=d&class=c9&mindevcount=2&hashtype=XX",
		"create_class domain=d&class=c9&mindevcount=2&replpolicy=Nope",
		"create_host host=h9&ip=10.0.0.1&port=7500",
		"create_device hostname=h1&devid=0",
		"create_device hostname=h9&devid=9",
		"set_state host=h1&device=3&state=down",
		"set_state host=h1&device=1&state=zombie",
		"set_weight host=h1&device=1&weight=-3",
		"set_server_setting key=schema_version&value=1",
		"set_server_setting key=memcache_ttl&value=abc",
		"delete_domain domain=d",
		"delete_host host=h1",
		"delete_class domain=d&class=default",
		"updateclass domain=d&key=nokey&class=c1",
		"rename domain=d&from_key=a&to_key=b",
		"delete domain=d&key=nokey",
	} {
		if got := lc.do(req); !strings.HasPrefix(got, "ERR ") {
			t.Errorf("%s = %q, want an ERR", req, got)
		}
	}
	if after := snap(); after != before {
		t.Errorf("refused commands changed the store:\nbefore %s\nafter  %s", before, after)
	}
}

func fmtAny(v any) string { return fmt.Sprintf("%+v", v) }
