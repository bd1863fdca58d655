package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// progress draws "label [===   ] 12.0 MiB / 100.0 MiB  12%" on a terminal, at most ten times a second
// (progressEvery apart) while bytes come, and the final line once, from done. It is not safe for
// concurrent use.
type progress struct {
	w     io.Writer
	label string
	total int64
	n     int64
	now   func() time.Time // the throttle's clock: time.Now, or a test's
	last  time.Time        // when the bar was last drawn; zero before the first
	shown string           // the line last drawn, so that an unchanged one is not drawn again
}

// progressMin is the size from which a progress bar is worth drawing.
const progressMin = 4 << 20

// progressEvery is the least time between two redraws of a bar as bytes come.
const progressEvery = 100 * time.Millisecond

// newProgress returns a progress bar on w, or nil when w is not a terminal or size is small.
func newProgress(w io.Writer, size int64, label string) *progress {
	if size < progressMin || !isTerminal(w) {
		return nil
	}
	return &progress{w: w, label: label, total: size, now: time.Now}
}

func (p *progress) Write(b []byte) (int, error) {
	p.set(p.n + int64(len(b)))
	return len(b), nil
}

// set records that n bytes are done and redraws the bar if it is due. Reaching the total is no
// exception to the throttle (reads at the end of the file call set again): done draws the final line.
func (p *progress) set(n int64) {
	p.n = n
	now := p.now()
	if now.Sub(p.last) < progressEvery {
		return
	}
	if line := progressLine(p.label, p.n, p.total); line != p.shown {
		p.last, p.shown = now, line
		fmt.Fprintf(p.w, "\r%s", line)
	}
}

// done draws the final line, unless it is already the one shown, and ends it.
func (p *progress) done() {
	if line := progressLine(p.label, p.n, p.total); line != p.shown {
		p.shown = line
		fmt.Fprintf(p.w, "\r%s\n", line)
		return
	}
	fmt.Fprint(p.w, "\n")
}

func progressLine(label string, n, total int64) string {
	pct := 100.0
	if total > 0 {
		pct = float64(n) * 100 / float64(total)
	}
	const width = 30
	fill := int(pct / 100 * width)
	fill = max(0, min(width, fill))
	return fmt.Sprintf("%s [%s%s] %s / %s %3.0f%%", label, strings.Repeat("=", fill), strings.Repeat(" ", width-fill),
		humanBytes(n), humanBytes(total), pct)
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, i := float64(n), -1
	for v >= unit && i < 4 {
		v /= unit
		i++
	}
	return fmt.Sprintf("%.1f %ciB", v, "KMGTP"[i])
}

// isTerminal reports whether w (a stream of env) is a terminal. A character device is not enough:
// /dev/null is one, and `mogway upload < /dev/null` must store an empty file rather than be refused
// as a forgotten --file, and `2>/dev/null` must not draw a progress bar. isTTY asks the terminal
// driver.
func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	return ok && isTTY(f)
}
