package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/mogway/mogway/internal/conf"
	"github.com/mogway/mogway/tracker/client"
	"github.com/mogway/mogway/tracker/mogproto"
)

var checkLeaf = admLeaf{
	verb: "check",
	help: cliHelp{
		name:     "adm check",
		synopsis: "",
		about: `Check every tracker, every alive host (GET /) and every device that is not dead (GET
//devN/usage), and print device usage, like mogadm check. Exits 1 when anything failed.`,
		examples: []string{"mogway adm --trackers=10.0.0.1:7001,10.0.0.2:7001 check"},
	},
	flags: func(*flag.FlagSet) func(context.Context, *admin, []string) error { return runCheck },
}

// errCheckFailed makes check exit 1 after its report, which already says what failed.
var errCheckFailed = errors.New("some checks failed")

func runCheck(ctx context.Context, a *admin, _ []string) error {
	w := a.e.stdout
	failed := false
	var hosts []client.Host
	var devs []client.Device
	fmt.Fprintln(w, "Checking trackers...")
	for _, addr := range a.cf.trackerList(os.Getenv, readMogConf(mogConfPaths()...)) {
		fmt.Fprintf(w, "  %s ... ", addr)
		p, err := client.NewPool(client.Config{Trackers: []string{addr}, Timeout: a.cf.timeout}, nil)
		if err != nil {
			return err
		}
		h, herr := p.GetHosts(ctx)
		d, derr := p.GetDevices(ctx)
		p.Close()
		if err := errors.Join(herr, derr); err != nil {
			failed = true
			fmt.Fprintf(w, "REQUEST FAILURE (%v)\n", err)
			continue
		}
		fmt.Fprintln(w, "OK")
		hosts, devs = h, d
	}
	if hosts == nil {
		return fmt.Errorf("check: no tracker answered")
	}
	fmt.Fprintln(w)

	hc := &http.Client{Timeout: 5 * time.Second}
	fmt.Fprintln(w, "Checking hosts...")
	sort.Slice(hosts, func(i, j int) bool { return hosts[i].ID < hosts[j].ID })
	alive := map[int64]string{}
	for _, h := range hosts {
		fmt.Fprintf(w, "  [%2d] %s ... ", h.ID, h.Name)
		if h.Status != "alive" {
			fmt.Fprintf(w, "skipping; status = %s\n", h.Status)
			continue
		}
		base := "http://" + net.JoinHostPort(h.IP, strconv.Itoa(h.HTTPPort))
		if _, err := httpGet(ctx, hc, base+"/"); err != nil {
			failed = true
			fmt.Fprintf(w, "REQUEST FAILURE (%v)\n", err)
			continue
		}
		fmt.Fprintln(w, "OK")
		alive[h.ID] = base
	}
	fmt.Fprintln(w)

	fmt.Fprintln(w, "Checking devices...")
	fmt.Fprintf(w, "  host device      %10s %10s %10s %7s  %-10s %5s\n", "size(G)", "used(G)", "free(G)", "use% ", "ob state", "I/O%")
	fmt.Fprintln(w, "  ---- ------------ ---------- ---------- ---------- ------- ---------- -----")
	sort.Slice(devs, func(i, j int) bool { return devs[i].ID < devs[j].ID })
	var total, used float64
	for _, h := range hosts {
		base, ok := alive[h.ID]
		if !ok {
			continue
		}
		for _, d := range devs {
			if d.HostID != h.ID || d.Status == "dead" {
				continue
			}
			fmt.Fprintf(w, "  [%2d] %-12s", h.ID, "dev"+strconv.FormatInt(d.ID, 10))
			body, err := httpGet(ctx, hc, base+"//dev"+strconv.FormatInt(d.ID, 10)+"/usage")
			var u devUsage
			if err == nil {
				u, err = parseUsage(body)
			}
			if err != nil {
				failed = true
				fmt.Fprintf(w, "REQUEST FAILURE (%v)\n", err)
				continue
			}
			t, us := u.total/(1<<20), u.used/(1<<20) // KiB in the usage file, GiB here
			total += t
			used += us
			pct := 0.0
			if t > 0 {
				pct = us / t * 100
			}
			state := d.ObservedState
			if state == "" {
				state = "?"
			}
			fmt.Fprintf(w, " %10.3f %10.3f %10.3f %6.2f%%  %-10s %5.1f\n", t, us, t-us, pct, state, d.Utilization)
		}
	}
	pct := 0.0
	if total > 0 {
		pct = used / total * 100
	}
	fmt.Fprintln(w, "  ---- ------------ ---------- ---------- ---------- -------")
	fmt.Fprintf(w, "             total: %10.3f %10.3f %10.3f %6.2f%%\n", total, used, total-used, pct)
	if failed {
		return errCheckFailed
	}
	return nil
}

func httpGet(ctx context.Context, hc *http.Client, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("%s", resp.Status)
	}
	return body, nil
}

// devUsage is the part of a device's usage file check prints; sizes in KiB as the file gives them.
type devUsage struct {
	total, used float64
}

// parseUsage reads "key: value" lines of a mogstored usage file.
func parseUsage(b []byte) (devUsage, error) {
	var u devUsage
	var haveTotal, haveUsed bool
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		n, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			continue
		}
		switch strings.TrimSpace(k) {
		case "total":
			u.total, haveTotal = n, true
		case "used":
			u.used, haveUsed = n, true
		}
	}
	if !haveTotal || !haveUsed {
		return u, fmt.Errorf("usage file without total and used")
	}
	return u, nil
}

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
	line := func(k, v string) { fmt.Fprintf(w, "%11s: %s\n", k, v) }
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
