package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/mogway/mogway/tracker/client"
)

// deviceStates are the device states in the order summary counts them.
var deviceStates = []string{"alive", "readonly", "drain", "down", "dead"}

// deviceSummaryLeaf is "adm device summary", like mogadm's.
func deviceSummaryLeaf() admLeaf {
	return leaf("device", "summary", "[--status=alive,readonly]",
		"Show one line per host: its space and how many devices it has in each state.", nil,
		[]string{"mogway adm device summary", "mogway adm device summary --status=alive,readonly,drain"},
		func(fs *flag.FlagSet) func(context.Context, *admin, []string) error {
			status := fs.String("status", "alive,readonly", "comma list of device states whose space is summed")
			return func(ctx context.Context, a *admin, _ []string) error {
				show := map[string]bool{}
				for _, s := range strings.Split(*status, ",") {
					if s = strings.TrimSpace(s); s != "" {
						show[s] = true
					}
				}
				if len(show) == 0 {
					return fmt.Errorf("device summary: --status names no state")
				}
				hosts, err := a.p.GetHosts(ctx)
				if err != nil {
					return trackerError("device summary", err)
				}
				devs, err := a.p.GetDevices(ctx)
				if err != nil {
					return trackerError("device summary", err)
				}
				printDeviceSummary(a.e.stdout, hosts, devs, show)
				return nil
			}
		})
}

// printDeviceSummary prints mogadm's "device summary" columns, one line per host by host id, and
// after them the count of the host's devices in each state. Space (GiB) sums the devices whose
// state is in show and whose size the tracker knows; %Used is "-" when that total is 0.
func printDeviceSummary(w io.Writer, hosts []client.Host, devs []client.Device, show map[string]bool) {
	hosts = append([]client.Host(nil), hosts...)
	sort.Slice(hosts, func(i, j int) bool { return hosts[i].ID < hosts[j].ID })
	fmt.Fprintf(w, "%-15s %6s %7s  %8s %8s %8s %8s  %s\n", "Hostname", "HostID", "Status", "used(G)", "free(G)", "total(G)", "%Used", "Devices")
	for _, h := range hosts {
		var total, used float64
		counts := map[string]int{}
		for _, d := range devs {
			if d.HostID != h.ID {
				continue
			}
			counts[d.Status]++
			if !show[d.Status] || d.MBTotal < 0 {
				continue
			}
			total += float64(d.MBTotal) / 1024
			if d.MBUsed > 0 {
				used += float64(d.MBUsed) / 1024
			}
		}
		pct := "-"
		if total > 0 {
			pct = fmt.Sprintf("%.2f", 100*used/total)
		}
		fmt.Fprintf(w, "%-15s [%4d]: %6s  %8.3f %8.3f %8.3f %8s  %s\n", h.Name, h.ID, h.Status, used, total-used, total, pct, stateCounts(counts))
	}
}

// stateCounts formats device counts as "alive=2 down=1": known states first, then others by name.
func stateCounts(counts map[string]int) string {
	if len(counts) == 0 {
		return "none"
	}
	var parts []string
	for _, s := range deviceStates {
		if n := counts[s]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", s, n))
			delete(counts, s)
		}
	}
	var other []string
	for s := range counts {
		other = append(other, s)
	}
	sort.Strings(other)
	for _, s := range other {
		parts = append(parts, fmt.Sprintf("%s=%d", s, counts[s]))
	}
	return strings.Join(parts, " ")
}
