package storaged

import (
	"bufio"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mogway/mogway/internal/testutil"
)

// mgmtSession sends lines in one write and reads want-many reply lines.
func mgmtSession(t *testing.T, addr string, send string, replies int) []string {
	t.Helper()
	c := testutil.Dial(t, addr)
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Minute))
	if _, err := io.WriteString(c, send); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(send, "\n") {
		c.(*net.TCPConn).CloseWrite()
	}
	br := bufio.NewReader(c)
	var out []string
	for range replies {
		l, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("after %q: reading reply %d: %v", send, len(out)+1, err)
		}
		out = append(out, l)
	}
	return out
}

// Spec 8.6 #83–#86.
func TestSideChannel(t *testing.T) {
	t.Parallel()
	n := startNode(t, nil)
	const uri = "/dev1/0/000/000/0000000099.fid"
	n.put(t, uri, []byte("hello"), nil)
	tests := []struct {
		send string
		want []string
	}{
		{"size " + uri + "\n", []string{uri + " 5\r\n"}},
		{"size " + uri + "\r\n", []string{uri + " 5\r\n"}},
		{"size /dev1/missing.fid\n", []string{"/dev1/missing.fid -1\r\n"}},
		{"size /dev1/../x\n", []string{"ERROR: uri invalid (contains ..)\r\n"}},
		{"size /dev1/0\n", []string{"/dev1/0 -1\r\n"}},
		{"size /etc/passwd\n", []string{"/etc/passwd -1\r\n"}},
		{"MD5 " + uri + "\n", []string{uri + " MD5=5d41402abc4b2a76b9719d911017c592\r\n"}},
		{"MD5 " + uri + " fsck\n", []string{uri + " MD5=5d41402abc4b2a76b9719d911017c592\r\n"}},
		{"MD5 /dev1/missing.fid\n", []string{"/dev1/missing.fid MD5=-1\r\n"}},
		{"MD5 /dev1/../../etc/passwd\n", []string{"ERROR: uri invalid (contains ..)\r\n"}},
		{"SHA-1 " + uri + "\n", []string{uri + " SHA-1=aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d\r\n"}},
		{"bogus\nsize " + uri + "\n", []string{"ERROR: unknown command: bogus\r\n", uri + " 5\r\n"}},
		{"\nsize " + uri + "\n", []string{"\r\n", uri + " 5\r\n"}},
		{"size\nMD5\n", []string{"ERROR: size needs a uri\r\n", "ERROR: MD5 needs a uri\r\n"}},
		{"size " + uri, []string{uri + " 5\r\n"}}, // last line without LF, then EOF
	}
	for _, tt := range tests {
		got := mgmtSession(t, n.mgmt, tt.send, len(tt.want))
		if strings.Join(got, "|") != strings.Join(tt.want, "|") {
			t.Errorf("side channel %q = %q, want %q", tt.send, got, tt.want)
		}
	}
	// Many pipelined commands on one connection are answered in order.
	var send strings.Builder
	var want []string
	for i := range 200 {
		if i%2 == 0 {
			send.WriteString("size " + uri + "\n")
			want = append(want, uri+" 5\r\n")
		} else {
			send.WriteString("MD5 " + uri + "\n")
			want = append(want, uri+" MD5=5d41402abc4b2a76b9719d911017c592\r\n")
		}
	}
	got := mgmtSession(t, n.mgmt, send.String(), len(want))
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("pipelined reply %d = %q, want %q", i, got[i], want[i])
		}
	}
	if n.srv.Stats().MgmtCommands == 0 {
		t.Errorf("Stats().MgmtCommands = 0, want > 0")
	}
}

func TestSideChannelLongLine(t *testing.T) {
	t.Parallel()
	n := startNode(t, nil)
	got := mgmtSession(t, n.mgmt, "size /dev1/"+strings.Repeat("a", 2*maxMgmtLine)+"\n", 1)
	if got[0] != "ERROR: line too long\r\n" {
		t.Errorf("long line = %q, want %q", got[0], "ERROR: line too long\r\n")
	}
}

// Spec 8.6 #86: blocks of "<devid>\t<util>\n" ending in ".\n".
func TestWatch(t *testing.T) {
	t.Parallel()
	n := startNode(t, nil)
	if _, err := readDiskstats(); err != nil {
		got := mgmtSession(t, n.mgmt, "watch\n", 1)
		if got[0] != "ERR iostat unavailable\r\n" {
			t.Errorf("watch without /proc/diskstats = %q, want ERR iostat unavailable", got[0])
		}
		return
	}
	got := mgmtSession(t, n.mgmt, "watch\n", 6) // two blocks of dev1, dev2, "."
	line := regexp.MustCompile(`^[12]\t(\d{1,3}\.\d\d|-)\n$`)
	for i, l := range got {
		switch i % 3 {
		case 2:
			if l != ".\n" {
				t.Errorf("watch line %d = %q, want %q", i, l, ".\n")
			}
		default:
			if !line.MatchString(l) || l[0] != "12"[i%3] {
				t.Errorf("watch line %d = %q, want dev%d and a utilisation", i, l, i%3+1)
			}
		}
	}
}

func TestFormatUtil(t *testing.T) {
	for _, tt := range []struct {
		busy, elapsed int64
		want          string
	}{{0, 1000, "0.00"}, {500, 1000, "50.00"}, {1234, 10000, "12.34"}, {1500, 1000, "100.00"}, {-5, 1000, "0.00"}} {
		if got := formatUtil(tt.busy, tt.elapsed); got != tt.want {
			t.Errorf("formatUtil(%d, %d) = %q, want %q", tt.busy, tt.elapsed, got, tt.want)
		}
	}
}

// FuzzMgmtCommand: every line gets exactly one reply line ending in CRLF.
func FuzzMgmtCommand(f *testing.F) {
	for _, s := range []string{"size /dev1/x", "MD5 /dev1/x fsck", "SHA-1 /dev1/../x", "bogus", "", "size"} {
		f.Add(s)
	}
	docroot := f.TempDir()
	os.Mkdir(filepath.Join(docroot, "dev1"), 0o755)
	os.WriteFile(filepath.Join(docroot, "dev1", "x"), []byte("hello"), 0o644)
	srv, err := New(Config{Docroot: docroot}, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, line string) {
		if strings.ContainsAny(line, "\r\n") || strings.TrimSpace(line) == "watch" {
			return // one line at a time; watch is a stream
		}
		var b strings.Builder
		w := bufio.NewWriter(&b)
		srv.mgmtCommand(w, line)
		w.Flush()
		out := b.String()
		if !strings.HasSuffix(out, "\r\n") || strings.Count(out, "\n") != 1 {
			t.Fatalf("mgmtCommand(%q) = %q, want one CRLF-terminated line", line, out)
		}
	})
}
