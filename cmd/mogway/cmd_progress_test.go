package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestProgressRedraws counts the lines a progress bar draws ("\r" starts each). Defect: it promised
// at most ten redraws a second but, once the file was fully read, redrew the 100% line on every
// call (the Read at EOF, then done), so a fast upload drew it three times.
func TestProgressRedraws(t *testing.T) {
	const size = progressMin
	final := "\r" + progressLine("upload", size, size) + "\n"

	t.Run("fast upload", func(t *testing.T) {
		// The whole file is read within one instant of the bar's clock: the first Read draws the
		// bar, and done the final line.
		src := filepath.Join(t.TempDir(), "src")
		if err := os.WriteFile(src, bytes.Repeat([]byte{'x'}, size), 0o644); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(src)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		var out bytes.Buffer
		frozen := time.Unix(1700000000, 0)
		ur := &uploadReader{f: f, pb: &progress{w: &out, label: "upload", total: size, now: func() time.Time { return frozen }}}
		if n, err := io.Copy(io.Discard, ur); n != size || err != nil {
			t.Fatalf("io.Copy(io.Discard, uploadReader) = %d, %v; want %d, nil", n, err, size)
		}
		if n, err := ur.Read(make([]byte, 1)); n != 0 || err != io.EOF { // as a second reader of the body would
			t.Fatalf("uploadReader.Read at EOF = %d, %v; want 0, EOF", n, err)
		}
		ur.pb.done()
		got := out.String()
		if draws, full := strings.Count(got, "\r"), strings.Count(got, "100%"); draws != 2 || full != 1 || !strings.HasSuffix(got, final) {
			t.Errorf("fast upload drew %q: %d lines, %d at 100%%; want 2 lines, the last %q and the only one at 100%%", got, draws, full, final)
		}
	})

	t.Run("throttle", func(t *testing.T) {
		// 64 writes of 64 KiB, 25ms apart by the bar's clock: a redraw is due every fourth write
		// (writes 0, 4, …, 60: 16 lines), the last write (63) is not, and done draws the 17th.
		var out bytes.Buffer
		clock := time.Unix(1700000000, 0)
		p := &progress{w: &out, label: "upload", total: size, now: func() time.Time { return clock }}
		for range size / (64 << 10) {
			p.Write(make([]byte, 64<<10))
			clock = clock.Add(25 * time.Millisecond)
		}
		p.done()
		got := out.String()
		if draws, full := strings.Count(got, "\r"), strings.Count(got, "100%"); draws != 17 || full != 1 || !strings.HasSuffix(got, final) {
			t.Errorf("1.6s upload drew %q: %d lines, %d at 100%%; want 17 lines (one per 100ms and the final one), the last %q and the only one at 100%%",
				got, draws, full, final)
		}
	})
}
