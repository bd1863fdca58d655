package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mogway/mogway/internal/clustertest"
)

// openPTY opens a new pseudo-terminal and returns its master and slave sides, or skips the test
// when the system has none to give (no devpts in a container).
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	var err error
	master, err = os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { master.Close() })
	fd := int(master.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil { // unlockpt(3)
		t.Skipf("no pseudo-terminal: unlockpt: %v", err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN) // ptsname(3)
	if err != nil {
		t.Skipf("no pseudo-terminal: ptsname: %v", err)
	}
	slave, err = os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { slave.Close() })
	return master, slave
}

// TestIsTerminal: isTerminal, which refuses stdin uploads from a terminal and turns the progress
// bar on, is true for a tty only. Defect: it took every character device, /dev/null included, for
// a terminal.
func TestIsTerminal(t *testing.T) {
	devNull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer devNull.Close()
	regular, err := os.Create(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer regular.Close()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	for _, tt := range []struct {
		name string
		w    any
	}{
		{os.DevNull, devNull},
		{"a regular file", regular},
		{"a pipe", pw},
		{"a strings.Reader", strings.NewReader("")},
	} {
		if isTerminal(tt.w) {
			t.Errorf("isTerminal(%s) = true, want false", tt.name)
		}
	}
	if pb := newProgress(devNull, progressMin, "upload"); pb != nil {
		t.Errorf("newProgress(%s, %d) = %v, want nil: no progress bar with 2>/dev/null", os.DevNull, progressMin, pb)
	}

	t.Run("pty", func(t *testing.T) {
		master, tty := openPTY(t)
		if !isTerminal(tty) {
			t.Errorf("isTerminal(%s) = false, want true", tty.Name())
		}
		if pb := newProgress(tty, progressMin, "upload"); pb == nil {
			t.Errorf("newProgress(%s, %d) = nil, want a progress bar on a terminal", tty.Name(), progressMin)
		}
		// docs/cli.md: reading stdin from a terminal is refused (exit 2), before any tracker is asked.
		// The terminal holds an end of file (Ctrl-D), so that an upload that reads it anyway ends
		// (exit 1, no tracker at port 1) instead of waiting for input.
		if _, err := master.Write([]byte{4}); err != nil {
			t.Fatal(err)
		}
		var stdout, stderr strings.Builder
		code := run(context.Background(), &env{stdin: tty, stdout: &stdout, stderr: &stderr},
			[]string{"upload", "--trackers=127.0.0.1:1", "--domain=d", "--key=k"})
		if code != 2 || !strings.Contains(stderr.String(), "give --file, or pipe the data to stdin") {
			t.Errorf("mogway upload with stdin on %s = exit %d, stderr %q; want exit 2 asking for --file", tty.Name(), code, stderr.String())
		}
	})
}

// TestUploadStdinFromDevNull runs `mogway upload < /dev/null` as a process: stdin is a character
// device but no terminal, so the upload stores an empty file instead of exiting 2 as if --file had
// been forgotten at a terminal.
func TestUploadStdinFromDevNull(t *testing.T) {
	c := clustertest.New(t, clustertest.Options{Domains: map[string]map[string]int{"d": {}}})
	tr := "--trackers=" + c.TrackerAddrs()[0]
	devNull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer devNull.Close()

	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "upload", tr, "--domain=d", "--key=from-dev-null")
	cmd.Env = append(os.Environ(), asMainEnv+"=1")
	cmd.Stdin = devNull
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mogway upload %s --domain=d --key=from-dev-null < %s: %v\n%s\nwant exit 0", tr, os.DevNull, err, out)
	}
	if r := mustMog(t, "info", tr, "--domain=d", "--key=from-dev-null"); infoField(r.stdout, "length") != "0" {
		t.Errorf("%v\nwant length 0", r)
	}
	if r := mustMog(t, "fetch", tr, "--domain=d", "--key=from-dev-null"); r.stdout != "" {
		t.Errorf("fetch of the upload from %s = %q, want nothing", os.DevNull, r.stdout)
	}
}

// TestUploadProgressOnTerminal: docs/cli.md, upload draws a progress bar on stderr when stderr is a
// terminal and the file is 4 MiB or more, with its 100% line once; a file one byte smaller gets none.
func TestUploadProgressOnTerminal(t *testing.T) {
	c := clustertest.New(t, clustertest.Options{Domains: map[string]map[string]int{"d": {}}})
	tr := "--trackers=" + c.TrackerAddrs()[0]
	for _, tt := range []struct {
		size int64
		bar  string // the bar's last line, "" for none
	}{
		{4 << 20, "\rupload [==============================] 4.0 MiB / 4.0 MiB 100%\r\n"},
		{4<<20 - 1, ""},
	} {
		src := filepath.Join(t.TempDir(), "src")
		if err := os.WriteFile(src, bytes.Repeat([]byte{'x'}, int(tt.size)), 0o644); err != nil {
			t.Fatal(err)
		}
		master, tty := openPTY(t)
		key := "progress/" + strconv.FormatInt(tt.size, 10)
		var stdout strings.Builder
		code := run(context.Background(), &env{stdin: strings.NewReader(""), stdout: &stdout, stderr: tty},
			[]string{"upload", tr, "--domain=d", "--key=" + key, "--file=" + src})
		out := ttyOutput(t, master, tty)
		if code != 0 {
			t.Fatalf("mogway upload of %d bytes with stderr on %s = exit %d; terminal:\n%q", tt.size, tty.Name(), code, out)
		}
		switch {
		case tt.bar != "" && !strings.HasSuffix(out, tt.bar):
			t.Errorf("mogway upload of %d bytes with stderr on %s drew %q, want a progress bar ending in %q", tt.size, tty.Name(), out, tt.bar)
		case tt.bar == "" && out != "":
			t.Errorf("mogway upload of %d bytes with stderr on %s drew %q, want nothing (under 4 MiB)", tt.size, tty.Name(), out)
		case tt.bar != "" && strings.Count(out, "100%") != 1:
			// TestProgressRedraws: the 100% line was drawn again by every Read at EOF and by done.
			t.Errorf("mogway upload of %d bytes with stderr on %s drew %q: %d lines at 100%%, want 1", tt.size, tty.Name(), out, strings.Count(out, "100%"))
		}
		if r := mustMog(t, "info", tr, "--domain=d", "--key="+key); infoField(r.stdout, "length") != strconv.FormatInt(tt.size, 10) {
			t.Errorf("%v\nwant length %d", r, tt.size)
		}
	}
}

// ttyOutput returns what was written to the terminal tty so far, read from its master side. It
// writes an end marker to tty and reads up to it, so it needs no pause.
func ttyOutput(t *testing.T, master, tty *os.File) string {
	t.Helper()
	const marker = "<end of output>"
	if _, err := tty.WriteString(marker); err != nil {
		t.Fatal(err)
	}
	done := make(chan string, 1)
	go func() {
		var got []byte
		buf := make([]byte, 4096)
		for !bytes.HasSuffix(got, []byte(marker)) {
			n, err := master.Read(buf)
			got = append(got, buf[:n]...)
			if err != nil {
				break
			}
		}
		done <- string(got)
	}()
	select {
	case got := <-done:
		out, ok := strings.CutSuffix(got, marker)
		if !ok {
			t.Fatalf("terminal %s ended before the end marker: %q", tty.Name(), got)
		}
		return out
	case <-time.After(waitTimeout):
		master.Close() // ends the read
		t.Fatalf("no end marker from terminal %s after %v: %q", tty.Name(), waitTimeout, <-done)
		return ""
	}
}
