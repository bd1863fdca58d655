package tracker

import (
	"bufio"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mogway/mogway/internal/testutil"
	"github.com/mogway/mogway/tracker/mogproto"
)

// TestPerlClientTranscript replays testdata/perl_client.txt: the request lines the Perl client,
// mogadm and the MogileFS-Utils tools send, against a tracker with two real storage nodes, checking
// that each reply carries the keys those tools read.
func TestPerlClientTranscript(t *testing.T) {
	n1 := startNode(t, "127.0.0.2", "-", 1, 2)
	n2 := startNode(t, "127.0.0.3", "-", 3)
	tt := startTracker(t, Config{})
	lc := tt.dial(t)
	vars := map[string]string{"n1_ip": n1.ip, "n1_port": n1.httpPort, "n2_ip": n2.ip, "n2_port": n2.httpPort}
	subst := func(s string) string {
		for k, v := range vars {
			s = strings.ReplaceAll(s, "${"+k+"}", v)
		}
		return s
	}
	// Request lines carry their values url-encoded; a ${var} inside one is encoded the same way.
	substEscaped := func(s string) string {
		for k, v := range vars {
			s = strings.ReplaceAll(s, "${"+k+"}", mogproto.Escape(v))
		}
		return s
	}
	f, err := os.Open(filepath.Join("testdata", "perl_client.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	last, lineNo := "", 0
	for sc.Scan() {
		lineNo++
		l := sc.Text()
		switch {
		case l == "" || strings.HasPrefix(l, "#"):
		case strings.HasPrefix(l, "> "):
			last = substEscaped(l[2:])
			got := lc.do(last)
			if a, err := mogproto.ParseReply([]byte(got)); err == nil {
				for _, p := range a {
					vars[p.Name] = p.Value
				}
			}
			vars["reply"] = got
		case strings.HasPrefix(l, "= "):
			if want := subst(l[2:]); vars["reply"] != want {
				t.Errorf("line %d: %s = %q, want %q", lineNo, last, vars["reply"], want)
			}
		case strings.HasPrefix(l, "< OK"):
			a, err := mogproto.ParseReply([]byte(vars["reply"]))
			if err != nil {
				t.Errorf("line %d: %s = %q, want OK", lineNo, last, vars["reply"])
				continue
			}
			for _, k := range strings.Fields(l[4:]) {
				if _, ok := a.Lookup(subst(k)); !ok {
					t.Errorf("line %d: %s = %q, lacks key %s", lineNo, last, vars["reply"], subst(k))
				}
			}
		case strings.HasPrefix(l, "< ERR "):
			if want := "ERR " + l[6:] + " "; !strings.HasPrefix(vars["reply"], want) {
				t.Errorf("line %d: %s = %q, want %s", lineNo, last, vars["reply"], want)
			}
		case l == "OBSERVE":
			tt.observeAll(1, 2, 3)
		case strings.HasPrefix(l, "PUT "), strings.HasPrefix(l, "GET "):
			f := strings.SplitN(l, " ", 3)
			u, body := subst(f[1]), f[2]
			if f[0] == "PUT" {
				if code, _ := testutil.Fetch(t, http.MethodPut, u, []byte(body), nil); code/100 != 2 {
					t.Fatalf("line %d: PUT %s = %d", lineNo, u, code)
				}
			} else if code, got := testutil.Fetch(t, http.MethodGet, u, nil, nil); code != 200 || string(got) != body {
				t.Errorf("line %d: GET %s = %d %q, want 200 %q", lineNo, u, code, got, body)
			}
		default:
			t.Fatalf("line %d: cannot read %q", lineNo, l)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
}
