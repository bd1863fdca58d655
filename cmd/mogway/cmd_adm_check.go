package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/mogway/mogway/tracker/client"
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
	flags: noFlags(runCheck),
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
