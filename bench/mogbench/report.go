package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// row is one line of the results table: a scenario measured on both sides.
type row struct {
	Scenario  string
	Unit      string // "req/s" or "MB/s"
	Mogway    float64
	Reference float64 // 0 = no reference in this scenario
	RefName   string
	P50, P99  [2]time.Duration // mogway, reference
	RSS       [2]int64         // peak RSS in bytes, mogway, reference
	Errors    [2]int64
	CPU       [2]float64     // server CPU µs per request (per MiB in MB/s rows), all processes of the side; 0 = not measured
	Shares    [2][]roleShare // CPU split by role, from the round whose total is the median; nil = not measured
	Switches  [2][]roleShare // context switches per request by role, of the rounds of Shares; nil = not measured
	Lookups   [2]bool        // the side (mogway, reference) asks the tracker: its GetPaths is measured
	GetPaths  [2]float64     // tracker get_paths answered per request of the side over the timed rounds
	Syscalls  [2]float64     // system calls per request, all processes of the side (a traced pass)
	Failed    [2]float64     // of which failed (such as EAGAIN reads)
	Profile   string         // `go tool pprof -top` of mogway when it was slower than the reference
}

// cpuUnit is what the row's CPU figure is counted by when not by request: " per MiB" in MB/s rows.
func (r row) cpuUnit() string {
	if r.Unit == "MB/s" && r.CPU != [2]float64{} {
		return " per MiB"
	}
	return ""
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func medianDur(xs []time.Duration) time.Duration {
	f := make([]float64, len(xs))
	for i, x := range xs {
		f[i] = float64(x)
	}
	return time.Duration(median(f))
}

func fmtNum(v float64) string {
	switch {
	case v == 0:
		return "–"
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	default:
		return fmt.Sprintf("%.1f", v)
	}
}

// fmtCalls prints system calls per request with the failed ones in parentheses.
func fmtCalls(calls, failed float64) string {
	if calls == 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f (%.1f)", calls, failed)
}

func fmtDur(d time.Duration) string {
	switch {
	case d == 0:
		return "–"
	case d < time.Millisecond:
		return fmt.Sprintf("%dµs", d.Microseconds())
	default:
		return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
	}
}

func fmtMiB(b int64) string {
	if b == 0 {
		return "–"
	}
	return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20))
}

// writeTable prints the markdown results table.
func writeTable(w io.Writer, rows []row) {
	fmt.Fprintln(w, "| scenario | mogway | reference | ratio | CPU µs/req mogway / ref | syscalls/req (failed) mogway / ref | "+
		"p50 mogway / ref | p99 mogway / ref | errors mogway / ref | peak RSS mogway / ref |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---|---|---|---|---|---|")
	for _, r := range rows {
		ratio := "–"
		if r.Reference > 0 && r.Mogway > 0 {
			ratio = fmt.Sprintf("%.2f×", r.Mogway/r.Reference)
		}
		ref := "–"
		if r.Reference > 0 {
			ref = fmtNum(r.Reference) + " " + r.Unit + " (" + r.RefName + ")"
		} else if r.RefName != "" {
			ref = r.RefName
		}
		fmt.Fprintf(w, "| %s | %s %s | %s | %s | %s / %s | %s / %s | %s / %s | %s / %s | %d / %d | %s / %s |\n",
			strings.ReplaceAll(r.Scenario, "|", "/"), fmtNum(r.Mogway), r.Unit, ref, ratio,
			fmtNum(r.CPU[0]), fmtNum(r.CPU[1])+r.cpuUnit(), fmtCalls(r.Syscalls[0], r.Failed[0]), fmtCalls(r.Syscalls[1], r.Failed[1]),
			fmtDur(r.P50[0]), fmtDur(r.P50[1]), fmtDur(r.P99[0]), fmtDur(r.P99[1]),
			r.Errors[0], r.Errors[1], fmtMiB(r.RSS[0]), fmtMiB(r.RSS[1]))
	}
}

// writeProfiles prints the CPU profiles taken where mogway was slower than the reference, and
// those of rows without a reference (the tracker's); with every (a -pgo run), those of every row
// that has a mogway process.
func writeProfiles(w io.Writer, rows []row, every bool) {
	heading := "\n## CPU profiles: where mogway is slower, and the tracker rows"
	if every {
		heading = "\n## CPU profiles of every row with a mogway process (-pgo)"
	}
	first := true
	for _, r := range rows {
		if r.Profile == "" {
			continue
		}
		if first {
			fmt.Fprintln(w, heading)
			fmt.Fprintln(w, "\nTaken with `--pprof` during a separate load run of the same scenario (`go tool pprof -top`).")
			first = false
		}
		if r.Reference == 0 {
			fmt.Fprintf(w, "\n### %s\n\n```\n%s\n```\n", r.Scenario, r.Profile)
			continue
		}
		fmt.Fprintf(w, "\n### %s (%.2f× of %s)\n\n```\n%s\n```\n", r.Scenario, r.Mogway/r.Reference, r.RefName, r.Profile)
	}
}
