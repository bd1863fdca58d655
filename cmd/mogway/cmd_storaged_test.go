package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mogway/mogway/internal/testutil"
)

// syncBuffer is a bytes.Buffer safe for a daemon's logger and a polling test.
type syncBuffer = testutil.SyncBuffer

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "mogway.yaml")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestStoragedConfigTest(t *testing.T) {
	docroot := t.TempDir()
	tests := []struct {
		name, yaml string
		flags      []string
		code       int
		out        []string // substrings of stdout+stderr
	}{
		{"ok", "storaged:\n  docroot: " + docroot + "\n  max_body: 1GiB\n", nil, 0,
			[]string{"is ok"}},
		{"unknown field", "storaged:\n  docroot: " + docroot + "\n  listne: \":7500\"\n", nil, 1,
			[]string{":3:", "storaged.listne", "did you mean \"listen\""}},
		{"bad value", "storaged:\n  docroot: " + docroot + "\n  usage_interval: 10ms\n", nil, 1,
			[]string{":3:", "storaged.usage_interval", "too short"}},
		{"bad size", "storaged:\n  max_body: lots\n", nil, 1,
			[]string{":2:", "invalid size"}},
		{"relative docroot", "storaged:\n  docroot: data\n", nil, 1,
			[]string{":2:", "storaged.docroot", "absolute path"}},
		{"flag wins", "storaged:\n  docroot: data\n", []string{"--docroot", docroot}, 0,
			[]string{"is ok"}},
		{"bad flag value", "storaged: {}\n", []string{"--listen", "nonsense"}, 1,
			[]string{"storaged.listen"}},
		{"broken yaml", "storaged:\n  docroot: [\n", nil, 1,
			[]string{"test failed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeConfig(t, tt.yaml)
			var stdout, stderr bytes.Buffer
			args := append([]string{"storaged", "-t", "-c", path}, tt.flags...)
			code := run(context.Background(), &env{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr}, args)
			out := stdout.String() + stderr.String()
			if code != tt.code {
				t.Fatalf("mogway %s = exit %d, want %d; output:\n%s", strings.Join(args, " "), code, tt.code, out)
			}
			for _, want := range tt.out {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
		})
	}
}

// TestStoragedRun starts the daemon in-process, stores and reads a file, and stops it by
// cancelling the context as SIGTERM does.
func TestStoragedRun(t *testing.T) {
	docroot := t.TempDir()
	os.Mkdir(filepath.Join(docroot, "dev1"), 0o755)
	path := writeConfig(t, "storaged:\n  docroot: /nonexistent\n  listen: \":7500\"\n")
	var stderr syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, &env{stdin: strings.NewReader(""), stdout: io.Discard, stderr: &stderr},
			[]string{"storaged", "-c", path, "--docroot", docroot, "--listen", "127.0.0.7:0", "--mgmt-listen", "off"})
	}()
	addrRE := regexp.MustCompile(`http=(127\.0\.0\.7:\d+)`)
	var addr string
	deadline := time.Now().Add(30 * time.Second)
	for addr == "" {
		if m := addrRE.FindStringSubmatch(stderr.String()); m != nil {
			addr = m[1]
			break
		}
		select {
		case code := <-done:
			t.Fatalf("storaged exited with %d:\n%s", code, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("storaged did not log its address:\n%s", stderr.String())
		}
		time.Sleep(5 * time.Millisecond) // polling interval
	}
	req, _ := http.NewRequest(http.MethodPut, "http://"+addr+"/dev1/0/000/000/0000000001.fid", strings.NewReader("hello"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("PUT = %d, want 200", resp.StatusCode)
	}
	resp, err = http.Get("http://" + addr + "/dev1/0/000/000/0000000001.fid")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "hello" {
		t.Errorf("GET = %q, want %q", body, "hello")
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("storaged after cancel = exit %d, want 0:\n%s", code, stderr.String())
		}
	case <-time.After(time.Minute):
		t.Fatal("storaged did not stop after cancel")
	}
}
