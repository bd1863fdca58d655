package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// The breakdown splits a side's CPU time per request by role (the gateway, the tracker, the storage
// nodes; nginx, the storage nodes), read around the same timed rounds as the side's total, so that a
// gap between the sides shows whose work it is. Rows whose route asks the tracker also count the
// tracker's get_paths answers per request, from its /metrics.

// trackerHTTP is the tracker's status page and /metrics address (--http-listen).
const trackerHTTP = "127.0.0.1:17080"

// trackerMetrics is the URL of the tracker's metrics.
const trackerMetrics = "http://" + trackerHTTP + "/metrics"

// role is the processes of one role of a side, whose CPU time the breakdown reports apart.
type role struct {
	name string
	pids []int
}

// roleName is the role of a daemon started for the benchmark: "gw", "tracker", "nodes" (every
// storage node) or "nginx" (master and workers).
func roleName(p *proc) string {
	switch {
	case p.isNginx():
		return "nginx"
	case strings.HasPrefix(p.name, "gateway"):
		return "gw"
	case strings.HasPrefix(p.name, "storaged"):
		return "nodes"
	}
	return p.name
}

// roles groups the processes of the daemons ps (nginx's workers included) by role, in the order the
// roles first appear in ps.
func roles(ps ...*proc) []role {
	var out []role
	seen := map[int]bool{}
	for _, p := range ps {
		if p == nil || p.cmd.Process == nil {
			continue
		}
		name := roleName(p)
		i := slices.IndexFunc(out, func(r role) bool { return r.name == name })
		if i < 0 {
			i = len(out)
			out = append(out, role{name: name})
		}
		for _, pid := range procPids(p) {
			if !seen[pid] {
				seen[pid] = true
				out[i].pids = append(out[i].pids, pid)
			}
		}
	}
	return out
}

// roleTicks returns the utime+stime of each role's processes, in the order of rs.
func roleTicks(rs []role) []int64 { return roleCounts(rs, cpuTicks) }

// roleCounts returns read summed over each role's processes, in the order of rs; a process that is
// gone counts as 0.
func roleCounts(rs []role, read func(pid int) (int64, error)) []int64 {
	out := make([]int64, len(rs))
	for i, r := range rs {
		for _, pid := range r.pids {
			if n, err := read(pid); err == nil {
				out[i] += n
			}
		}
	}
	return out
}

// roleShare is one role's part of a side's figure per request (or per MiB): CPU µs, or context
// switches.
type roleShare struct {
	Role string
	Per  float64
}

// shares returns each role's CPU µs per unit (see perRequest) from its ticks before and after a
// round of that many units.
func shares(rs []role, before, after []int64, units float64) []roleShare {
	return perRole(rs, before, after, func(ticks int64) float64 { return perRequest(ticks, units) })
}

// perRole returns each role's share, per(the role's count after the round less before it).
func perRole(rs []role, before, after []int64, per func(delta int64) float64) []roleShare {
	out := make([]roleShare, len(rs))
	for i, r := range rs {
		out[i] = roleShare{r.name, per(after[i] - before[i])}
	}
	return out
}

// total is the sum of the shares: the side's CPU µs per request.
func total(s []roleShare) float64 {
	var sum float64
	for _, x := range s {
		sum += x.Per
	}
	return sum
}

// fmtShares prints the shares and their sum with prec decimals, e.g. "37.5 gw + 4.6 tracker + 24.0
// nodes = 66.0"; a single share is printed alone and none as "–".
func fmtShares(s []roleShare, prec int) string {
	if len(s) == 0 {
		return "–"
	}
	parts := make([]string, len(s))
	for i, x := range s {
		parts[i] = fmt.Sprintf("%.*f %s", prec, x.Per, x.Role)
	}
	if len(s) == 1 {
		return parts[0]
	}
	return fmt.Sprintf("%s = %.*f", strings.Join(parts, " + "), prec, total(s))
}

// medianIndex is the index of xs's median element (the lower of the two middle ones for an even
// count), or -1 for none. The breakdown is that of the round whose total is the median, so its shares
// add up to the CPU figure of the main table.
func medianIndex(xs []float64) int {
	if len(xs) == 0 {
		return -1
	}
	idx := make([]int, len(xs))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return xs[idx[a]] < xs[idx[b]] })
	return idx[(len(idx)-1)/2]
}

// metricsTimeout bounds one read of the tracker's /metrics.
const metricsTimeout = 10 * time.Second

// getPathsAnswered returns the get_paths lines the tracker whose /metrics is at url has answered so
// far, with any result, read through client (the caller's one client for its rounds).
func getPathsAnswered(client *http.Client, url string) (float64, error) {
	resp, err := client.Get(url)
	if err != nil {
		return 0, fmt.Errorf("tracker metrics: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, fmt.Errorf("tracker metrics: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("tracker metrics: %s", resp.Status)
	}
	return commandCount(body, "get_paths")
}

// commandsMetric counts the tracker's answered commands by command and result.
const commandsMetric = "mogway_tracker_commands_total"

// commandCount sums the samples of commandsMetric whose command label is cmd (every result), from
// a scrape in the Prometheus text format. A scrape without the metric is an error: the count would
// read as zero lookups.
func commandCount(scrape []byte, cmd string) (float64, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(scrape))
	if err != nil {
		return 0, fmt.Errorf("tracker metrics: %w", err)
	}
	fam := fams[commandsMetric]
	if fam == nil {
		return 0, fmt.Errorf("tracker metrics: no %s", commandsMetric)
	}
	var sum float64
	for _, m := range fam.GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "command" && l.GetValue() == cmd {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum, nil
}

// writeBreakdown prints the second table: CPU µs per request of each side by role, and the tracker's
// get_paths answers per request where the route asks the tracker. Rows without a CPU figure are left out.
func writeBreakdown(w io.Writer, rows []row) {
	first := true
	for _, r := range rows {
		if len(r.Shares[0]) == 0 && len(r.Shares[1]) == 0 {
			continue
		}
		if first {
			fmt.Fprintln(w, "\n## CPU µs per request by process")
			fmt.Fprintln(w, "\nThe CPU figure of the table above, split by role, from the timed round whose total is the median. "+
				"gw is the gateway, nodes both storage nodes, nginx its master and workers. get_paths/req is the tracker's "+
				"get_paths answers per request over the timed rounds, in rows whose route asks the tracker (mogway / reference "+
				"where the reference asks it too). Rows marked per MiB "+
				"count CPU µs per MiB moved. switches/req are the context switches (voluntary and not, every thread) of each "+
				"role per request in the same rounds: on one server core, each is a sleeping server woken, or a busy one "+
				"set aside, paid in the kernel.")
			fmt.Fprintln(w, "\n| scenario | mogway | reference | get_paths/req | switches/req mogway | switches/req reference |")
			fmt.Fprintln(w, "|---|---|---|---:|---|---|")
			first = false
		}
		lookups := "–"
		if r.Lookups[0] {
			lookups = fmt.Sprintf("%.2f", r.GetPaths[0])
		}
		if r.Lookups[1] {
			lookups += fmt.Sprintf(" / %.2f", r.GetPaths[1])
		}
		fmt.Fprintf(w, "| %s%s | %s | %s | %s | %s | %s |\n", strings.ReplaceAll(r.Scenario, "|", "/"), r.cpuUnit(),
			fmtShares(r.Shares[0], 1), fmtShares(r.Shares[1], 1), lookups, fmtShares(r.Switches[0], 2), fmtShares(r.Switches[1], 2))
	}
}
