package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// progress draws "label [===   ] 12.0 MiB / 100.0 MiB  12%" on a terminal, at most ten times a second.
type progress struct {
	w     io.Writer
	label string
	total int64
	n     int64
	last  time.Time
}

// progressMin is the size from which a progress bar is worth drawing.
const progressMin = 4 << 20

// newProgress returns a progress bar on w, or nil when w is not a terminal or size is small.
func newProgress(w io.Writer, size int64, label string) *progress {
	if size < progressMin || !isTerminal(w) {
		return nil
	}
	return &progress{w: w, label: label, total: size}
}

func (p *progress) Write(b []byte) (int, error) {
	p.set(p.n + int64(len(b)))
	return len(b), nil
}

// set records that n bytes are done and redraws the bar if it is due.
func (p *progress) set(n int64) {
	p.n = n
	if now := time.Now(); now.Sub(p.last) >= 100*time.Millisecond || p.n == p.total {
		p.last = now
		fmt.Fprintf(p.w, "\r%s", progressLine(p.label, p.n, p.total))
	}
}

func (p *progress) done() { fmt.Fprintf(p.w, "\r%s\n", progressLine(p.label, p.n, p.total)) }

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
