// Command mogbench runs mogway and the nginx stacks it replaces side by side on this machine and prints
// a markdown table of ratios measured in the same run. It is started by `make bench` (bench/run.sh).
//
// Servers are pinned to CPU 0 and the load generator to CPU 1, so both sides get the same core. Each
// scenario alternates mogway and the reference for several rounds and reports medians.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"
)

type options struct {
	quick     bool
	bin       string
	work      string
	out       string
	rounds    int
	duration  time.Duration
	traceTime time.Duration // the traced pass that counts system calls, per side
	// profileTime is how long a row's mogway process is profiled (at least pgoTime with -pgo)
	profileTime time.Duration
	conns       int
	bigSize     int64
	upSize      int64
	only        string
	pgo         string // write the merged CPU profiles of every profiled row here (profile-guided optimisation)
	hold        bool   // start the cluster, store the objects, print its addresses and wait for a signal
}

func main() {
	var o options
	flag.BoolVar(&o.quick, "quick", false, "smoke run: one short round per scenario, small download and upload (about three minutes)")
	flag.StringVar(&o.bin, "bin", "bin/mogway", "mogway binary")
	flag.StringVar(&o.work, "work", "bench/work", "scratch directory (wiped at start)")
	flag.StringVar(&o.out, "out", "bench/results", "directory for the results file (<date>.md)")
	flag.StringVar(&o.only, "only", "", "run only the scenarios whose name contains one of these comma-separated words, e.g. -only=upload")
	flag.StringVar(&o.pgo, "pgo", "", "profile the mogway process of every row that has one (also in -quick) and merge the profiles into this file, "+
		"for profile-guided optimisation (`make pgo` writes cmd/mogway/default.pgo, which `go build` uses)")
	flag.BoolVar(&o.hold, "hold", false, "start the cluster, nginx and the lookup rows' nginx, store the test objects (those of the -only scenarios, else all), "+
		"print their processes and URLs, and keep them running until interrupted (Ctrl-C): for measurements by hand (perf, strace, wrk)")
	flag.Parse()
	// Five short rounds a side rather than three long ones: the sides' rounds alternate more often, so
	// a slow stretch of a shared machine falls on both sides' rounds more evenly.
	o.rounds, o.duration, o.traceTime, o.profileTime, o.conns, o.bigSize, o.upSize = 5, 3*time.Second, 2*time.Second, 5*time.Second, 32, 1<<30, 256<<20
	if o.quick {
		o.rounds, o.duration, o.traceTime, o.profileTime, o.bigSize, o.upSize = 1, 2*time.Second, time.Second, 2*time.Second, 32<<20, 32<<20
	}
	if o.pgo != "" {
		o.profileTime = max(o.profileTime, pgoTime)
	}
	if err := run(o); err != nil {
		log.Fatalf("mogbench: %v", err)
	}
}

func run(o options) error {
	ctx := context.Background()
	work, err := filepath.Abs(o.work)
	if err != nil {
		return err
	}
	_ = os.RemoveAll(work)
	if err := os.MkdirAll(work, 0o755); err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	c, err := startCluster(ctx, o, work, logger)
	if err != nil {
		return err
	}
	defer c.stop()
	selected, err := selectScenarios(scenarios(c), o.only)
	if err != nil {
		return err
	}
	var need []string
	for _, s := range selected {
		need = append(need, s.objects...)
	}
	if err := c.store(ctx, need); err != nil {
		return err
	}
	if o.hold {
		return c.hold(os.Stdout)
	}

	started := time.Now()
	var rows []row
	for _, s := range selected {
		fmt.Fprintf(os.Stderr, "== %s\n", s.name)
		r, err := s.run()
		if err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		rows = append(rows, r)
	}

	var b strings.Builder
	fmt.Fprintf(&b, "# mogway vs nginx — %s\n\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	mode := "full"
	if o.quick {
		mode = "quick (smoke run; numbers are indicative only)"
	}
	if o.only != "" {
		mode += fmt.Sprintf(", only the scenarios matching %q", o.only)
	}
	fmt.Fprintf(&b, "Mode: %s. %d round(s) of %v per side per scenario, alternating mogway and reference; medians. "+
		"Servers pinned to CPU 0, load generator (wrk, %d connections, 1 thread) on CPU 1; in the \"2 cores\" rows servers "+
		"and load generator share CPUs 0 and 1. Ratio = mogway / reference (above 1× mogway is faster). CPU µs/req is the "+
		"utime+stime of every server process of the side (gateway, tracker and storage nodes; nginx master, workers and "+
		"storage nodes) over the timed rounds per request, and per MiB moved in the MB/s rows (download, upload: one transfer "+
		"a round, from /proc's 10 ms ticks); syscalls/req is counted by `strace -c -f` in a separate pass. "+
		"Run time %v.\n\n", mode, o.rounds, o.duration, o.conns, time.Since(started).Round(time.Second))
	writeTable(&b, rows)
	writeBreakdown(&b, rows)
	b.WriteString("\n" + c.describe())
	writeProfiles(&b, rows, o.pgo != "")
	fmt.Print(b.String())
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	name := time.Now().UTC().Format("2006-01-02")
	if o.quick {
		name += "-quick"
	}
	if o.only != "" {
		name += "-only"
	}
	path := filepath.Join(o.out, name+".md")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "results written to %s\n", path)
	if o.pgo != "" {
		profiles, err := filepath.Glob(filepath.Join(work, "cpu-*.pb.gz"))
		if err != nil {
			return err
		}
		if err := mergeProfiles(o.pgo, profiles); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "%d profiles merged into %s\n", len(profiles), o.pgo)
	}
	return nil
}
