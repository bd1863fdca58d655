package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"sort"
	"strconv"
	"time"

	"github.com/mogway/mogway/internal/conf"
	"github.com/mogway/mogway/tracker/client"
	"github.com/mogway/mogway/tracker/mogproto"
)

func fsckLeaves() []admLeaf {
	simple := func(verb, about, done string, call func(*client.Pool, context.Context) error) admLeaf {
		return leaf("fsck", verb, "", about, nil, []string{"mogway adm fsck " + verb},
			noFlags(func(ctx context.Context, a *admin, _ []string) error {
				if err := call(a.p, ctx); err != nil {
					return trackerError("fsck "+verb, err)
				}
				return a.ok(done)
			}))
	}
	return []admLeaf{
		simple("start", "Start or resume the background fsck.", "fsck started", (*client.Pool).FsckStart),
		simple("stop", "Stop (pause) the background fsck.", "fsck stopped", (*client.Pool).FsckStop),
		simple("clearlog", "Clear the fsck log.", "fsck log cleared", (*client.Pool).FsckClearLog),
		leaf("fsck", "reset", "[--policy-only] [--startpos=FID]", "Move the fsck position back to the beginning and clear its counters.",
			nil, []string{"mogway adm fsck reset --policy-only"},
			func(fs *flag.FlagSet) func(context.Context, *admin, []string) error {
				policyOnly := fs.Bool("policy-only", false, "check replication policy only; don't contact storage nodes")
				startpos := fs.Int64("startpos", 0, "fid to restart from")
				return func(ctx context.Context, a *admin, _ []string) error {
					if err := a.p.FsckReset(ctx, *policyOnly, *startpos); err != nil {
						return trackerError("fsck reset", err)
					}
					return a.ok("fsck reset")
				}
			}),
		leaf("fsck", "status", "", "Show whether fsck runs, its progress and its event counters.", nil,
			[]string{"mogway adm fsck status"},
			noFlags(func(ctx context.Context, a *admin, _ []string) error {
				st, err := a.p.FsckStatus(ctx)
				if err != nil {
					return trackerError("fsck status", err)
				}
				printFsckStatus(a.e.stdout, st)
				return nil
			})),
		leaf("fsck", "printlog", "", "Print the fsck log.", nil, []string{"mogway adm fsck printlog"},
			noFlags(func(ctx context.Context, a *admin, _ []string) error {
				return printFsckLog(ctx, a.p, a.e.stdout)
			})),
		leaf("fsck", "taillog", "[--interval=5s]", "Print the last 20 fsck log rows, then new ones as they come, until interrupted.", nil,
			[]string{"mogway adm fsck taillog"},
			func(fs *flag.FlagSet) func(context.Context, *admin, []string) error {
				interval := conf.Duration(5 * time.Second)
				fs.Var(&interval, "interval", "how often to ask for new rows")
				return func(ctx context.Context, a *admin, _ []string) error {
					return tailFsckLog(ctx, a.p, a.e.stdout, interval.Or(5*time.Second))
				}
			}),
	}
}

// printFsckStatus prints fsck_status like mogadm: running, progress, elapsed time and check type,
// then any other keys (the num_<EVCODE> counters) in brackets.
func printFsckStatus(w io.Writer, st mogproto.Args) {
	num := func(k string) float64 { n, _ := strconv.ParseFloat(st.Get(k), 64); return n }
	line := func(k, v string) { fmt.Fprintf(w, "%11s: %s\n", k, printable(v)) }
	known := map[string]bool{"current_time": true, "max_logid": true, "host": true, "running": true,
		"max_fid_checked": true, "end_fid": true, "start_time": true, "stop_time": true, "policy_only": true}
	fmt.Fprintln(w)
	running := "No"
	if num("running") != 0 {
		running = "Yes (on " + st.Get("host") + ")"
	}
	line("Running", running)
	ratio := 0.0
	if e := num("end_fid"); e > 0 {
		ratio = num("max_fid_checked") / e
	}
	line("Status", fmt.Sprintf("%s / %s (%0.2f%%)", orZero(st.Get("max_fid_checked")), orZero(st.Get("end_fid")), 100*ratio))
	elapsed := 0.0
	if start := num("start_time"); start > 0 {
		end := num("stop_time")
		if end == 0 {
			end = num("current_time")
		}
		elapsed = end - start
	}
	perSec := 0.0
	if elapsed > 0 {
		perSec = num("max_fid_checked") / elapsed
	}
	remain := 0.0
	if perSec > 0 {
		remain = (num("end_fid") - num("max_fid_checked")) / perSec
	}
	line("Time", fmt.Sprintf("%s (%0.1f fids/s; %s remain)", shortDuration(elapsed), perSec, shortDuration(remain)))
	check := "Normal (check policy + files)"
	if num("policy_only") != 0 {
		check = "Repl policy only (skip file checks)"
	}
	line("Check Type", check)
	var extra []string
	for _, kv := range st {
		if !known[kv.Name] {
			extra = append(extra, kv.Name)
		}
	}
	if len(extra) > 0 {
		sort.Strings(extra)
		fmt.Fprintln(w)
		for _, k := range extra {
			line("["+k+"]", st.Get(k))
		}
	}
	fmt.Fprintln(w)
}

func orZero(s string) string {
	if s == "" {
		return "0"
	}
	return s
}

func shortDuration(s float64) string {
	if s < 60 {
		return strconv.Itoa(int(s)) + "s"
	}
	return strconv.Itoa(int(s/60)) + "m"
}

const fsckLogFormat = "%-20s %5s %13s %10s\n"

// printFsckLog prints every fsck log row, 100 per request, until a page comes back empty.
func printFsckLog(ctx context.Context, p *client.Pool, w io.Writer) error {
	fmt.Fprintf(w, fsckLogFormat, "unixtime", "event", "fid", "devid")
	_, err := printFsckRows(ctx, p, w, 0)
	return err
}

// printFsckRows prints the rows after the log id after and returns the last log id printed.
func printFsckRows(ctx context.Context, p *client.Pool, w io.Writer, after int64) (int64, error) {
	for {
		rows, err := p.FsckLog(ctx, after)
		if err != nil {
			return after, trackerError("fsck log", err)
		}
		if len(rows) == 0 {
			return after, nil
		}
		for _, r := range rows {
			dev := "-"
			if r.DevID != 0 {
				dev = strconv.FormatInt(r.DevID, 10)
			}
			fmt.Fprintf(w, fsckLogFormat, strconv.FormatInt(r.UTime, 10), r.EvCode, strconv.FormatInt(r.Fid, 10), dev)
		}
		last := rows[len(rows)-1].LogID
		if last <= after {
			return after, nil
		}
		after = last
	}
}

// tailFsckLog prints the last 20 rows, then polls for new ones every interval until ctx ends, which
// is how it stops (Ctrl-C); that is a success.
func tailFsckLog(ctx context.Context, p *client.Pool, w io.Writer, interval time.Duration) error {
	st, err := p.FsckStatus(ctx)
	if err != nil {
		return trackerError("fsck taillog", err)
	}
	maxID, _ := st.Int("max_logid")
	after := max(0, maxID-20)
	fmt.Fprintf(w, fsckLogFormat, "unixtime", "event", "fid", "devid")
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		after, err = printFsckRows(ctx, p, w, after)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}
