package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

type scenario struct {
	name    string
	objects []string // test objects (keys of options.objectSizes) the scenario reads
	run     func() (row, error)
}

// selectScenarios keeps the scenarios whose name contains one of the comma-separated words of only
// (case-insensitive); an empty only keeps all of them.
func selectScenarios(all []scenario, only string) ([]scenario, error) {
	if only == "" {
		return all, nil
	}
	var out []scenario
	for _, s := range all {
		for _, w := range strings.Split(only, ",") {
			if w = strings.TrimSpace(w); w != "" && strings.Contains(strings.ToLower(s.name), strings.ToLower(w)) {
				out = append(out, s)
				break
			}
		}
	}
	if len(out) == 0 {
		names := make([]string, len(all))
		for i, s := range all {
			names[i] = s.name
		}
		return nil, fmt.Errorf("-only %q matches no scenario; the scenarios are: %s", only, strings.Join(names, "; "))
	}
	return out, nil
}

// localURL is the URL of path on a gateway or nginx port of 127.0.0.1.
func localURL(port int, path string) string { return fmt.Sprintf("http://127.0.0.1:%d%s", port, path) }

// scenarios lists every scenario in table order. The objects they read are stored after the
// selection (cluster.store), so the closures look them up when they run.
func scenarios(c *cluster) []scenario {
	obj := func(key string) object { return c.objects[key] }
	four, one, big, k64 := []string{"4k"}, []string{"1m"}, []string{"big"}, []string{"64k"}
	// proxied compares the gateway on port with the nginx URL ref, one server core each.
	proxied := func(name, path string, port int, ref, refName string) (row, error) {
		gw := c.gateways[port]
		return c.ab(abRun{name: name, mogURL: localURL(port, path), refURL: ref, refName: refName,
			mog: c.mogSide(gw), ref: c.refSide(c.nginx), pprof: pprofAddr(port), lookups: [2]bool{trackerRoute(path), false}})
	}
	return []scenario{
		{"storage node GET 4 KiB", four, func() (row, error) {
			k4 := obj("4k")
			return c.ab(abRun{name: "storage node GET 4 KiB", mogURL: "http://" + nodeA + k4.path,
				refURL: localURL(ngx.Static, k4.path), refName: "nginx static",
				mog: []*proc{c.nodes[0], c.nodes[1]}, ref: c.refSide(c.nginx), pprof: pprofAddr(17500)})
		}},
		{"cache hit 4 KiB", four, func() (row, error) {
			return proxied("cache hit 4 KiB", "/bench/4k", gwCache, localURL(ngx.Cache, obj("4k").path), "nginx proxy_cache")
		}},
		{"cache hit 1 MiB", one, func() (row, error) {
			return proxied("cache hit 1 MiB", "/bench/1m", gwCache, localURL(ngx.Cache, obj("1m").path), "nginx proxy_cache")
		}},
		{"miss 4 KiB, path cache on", four, func() (row, error) {
			return proxied("miss path 4 KiB (tracker lookup cached + storage fetch)", "/bench/4k", gwNoCache,
				localURL(ngx.Proxy, obj("4k").path), "nginx proxy_pass")
		}},
		{"miss 4 KiB, path cache off", four, func() (row, error) {
			return proxied("miss path 4 KiB (tracker get_paths every request + storage fetch)", "/bench/4k", gwNoPathCache,
				localURL(ngx.Proxy, obj("4k").path), "nginx proxy_pass")
		}},
		{"miss 4 KiB, 256 distinct keys, path cache off", []string{distinctGroup}, c.distinctRow},
		{"miss 4 KiB, path cache off, nginx asking the tracker", four, func() (row, error) { return c.lookupRow(false) }},
		{"miss 4 KiB, 256 distinct keys, path cache off, nginx asking the tracker", []string{distinctGroup},
			func() (row, error) { return c.lookupRow(true) }},
		{"upstream group 4 KiB", four, func() (row, error) {
			k4 := obj("4k")
			return proxied("upstream group 4 KiB (FastDFS-style, same URI on both sides)", k4.path, gwNoCache,
				localURL(ngx.Proxy, k4.path), "nginx proxy_pass")
		}},
		{"2 cores: cache hit 4 KiB", four, func() (row, error) {
			return c.twoCores("2 cores: cache hit 4 KiB", "/bench/4k", obj("4k").path, gw2Cache, ngx2.Cache,
				"nginx proxy_cache, 2 workers")
		}},
		{"2 cores: upstream group 4 KiB", four, func() (row, error) {
			k4 := obj("4k")
			return c.twoCores("2 cores: upstream group 4 KiB", k4.path, k4.path, gw2NoCache, ngx2.Proxy,
				"nginx proxy_pass, 2 workers")
		}},
		{"big download", big, func() (row, error) { return c.download(obj("big")) }},
		{"upload through the gateway", nil, func() (row, error) { return c.uploadRow() }},
		{"tracker get_paths noverify", four, func() (row, error) { return c.getPaths(false) }},
		{"tracker get_paths verify", four, func() (row, error) { return c.getPaths(true) }},
		{"failover", four, func() (row, error) { return c.failover(obj("4k")) }},
		{"image resize", nil, func() (row, error) { return c.imageRow(false) }},
		{"image variant cached", nil, func() (row, error) { return c.imageRow(true) }},
		{"storage node hung, tracker route", k64, func() (row, error) {
			return c.hungRow("tracker route", localURL(gwNoCache, "/bench/64k"), obj("64k"))
		}},
		{"storage node hung, upstream route", k64, func() (row, error) {
			return c.hungRow("upstream route", localURL(gwNoCache, obj("64k").path), obj("64k"))
		}},
	}
}

// warm fetches url once so caches and connections are primed.
func warm(url string) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != 200 {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

// abRun is one throughput comparison: the URL of each side, and the server processes of each side whose
// CPU time and system calls are counted (the first of each is the one whose peak RSS is shown).
type abRun struct {
	name, mogURL, refURL, refName string
	mog, ref                      []*proc
	pprof                         string  // --pprof address of mog[0], profiled when mogway is slower
	loadCPUs                      string  // where wrk runs; loadCPUs when empty
	lookups                       [2]bool // the side (mogway, reference) asks the tracker: count its get_paths per request
	// paths, when set for a side, are the request paths its wrk goes through in turn on the host of
	// its URL (a Lua script in the work directory), instead of the URL's own path; warming fetches each.
	paths [2][]string
}

// trackerRoute reports whether path is on the gateways' tracker route (the domain's prefix).
func trackerRoute(path string) bool { return strings.HasPrefix(path, "/"+domain+"/") }

// mogSide is front (a gateway, or the lookup rows' nginx) and the daemons a request to it may reach:
// the tracker and both storage nodes.
func (c *cluster) mogSide(front *proc) []*proc {
	return []*proc{front, c.tracker, c.nodes[0], c.nodes[1]}
}

// refSide is the reference's nginx (master and workers) and the storage nodes it proxies to.
func (c *cluster) refSide(ng *proc) []*proc { return []*proc{ng, c.nodes[0], c.nodes[1]} }

// ab runs wrk against mogway and the reference, alternating, and reports medians. Around each timed
// round it reads the CPU time of each role of the side's processes and, when the route asks the
// tracker, the tracker's get_paths count; after the rounds, a separate traced pass per side counts
// system calls.
func (c *cluster) ab(a abRun) (row, error) {
	cpus := a.loadCPUs
	if cpus == "" {
		cpus = loadCPUs
	}
	urls := [2]string{a.mogURL, a.refURL}
	byRole := [2][]role{roles(a.mog...), roles(a.ref...)}
	sides := [2][]int{rolePids(byRole[0]), rolePids(byRole[1])}
	scripts, err := c.writeScripts(a)
	if err != nil {
		return row{}, err
	}
	for _, side := range []int{0, 1, 0, 1} {
		for _, u := range sideURLs(urls[side], a.paths[side]) {
			if err := warm(u); err != nil {
				return row{}, err
			}
		}
	}
	var rps, cpu [2][]float64
	var split, switches [2][][]roleShare
	var p50, p99 [2][]time.Duration
	var errs [2]int64
	var lookups, requests [2]float64 // per side, get_paths answered and requests, over the rounds
	metrics := &http.Client{Timeout: metricsTimeout}
	for range c.o.rounds {
		for side, u := range urls {
			counting := a.lookups[side] // this round's get_paths are counted
			var g0 float64
			if counting {
				if g0, err = getPathsAnswered(metrics, trackerMetrics); err != nil {
					return row{}, err
				}
			}
			t0, s0 := roleTicks(byRole[side]), roleSwitches(byRole[side])
			r, err := runWrk(cpus, u, scripts[side], c.o.conns, c.o.duration)
			if err != nil {
				return row{}, err
			}
			s := shares(byRole[side], t0, roleTicks(byRole[side]), float64(r.Requests))
			switches[side] = append(switches[side], switchShares(byRole[side], s0, roleSwitches(byRole[side]), float64(r.Requests)))
			if counting {
				g1, err := getPathsAnswered(metrics, trackerMetrics)
				if err != nil {
					return row{}, err
				}
				lookups[side] += g1 - g0
				requests[side] += float64(r.Requests)
			}
			split[side] = append(split[side], s)
			cpu[side] = append(cpu[side], total(s))
			rps[side] = append(rps[side], r.RPS)
			p50[side] = append(p50[side], r.P50)
			p99[side] = append(p99[side], r.P99)
			errs[side] += r.Errors
		}
	}
	mid := [2]int{medianIndex(cpu[0]), medianIndex(cpu[1])} // the median round of each side
	r := row{
		Scenario: a.name, Unit: "req/s", RefName: a.refName,
		Mogway: median(rps[0]), Reference: median(rps[1]),
		P50:    [2]time.Duration{medianDur(p50[0]), medianDur(p50[1])},
		P99:    [2]time.Duration{medianDur(p99[0]), medianDur(p99[1])},
		Errors: errs,
		RSS:    [2]int64{a.mog[0].peakRSS(), nginxRSS(a.ref[0])},
		CPU:    [2]float64{median(cpu[0]), median(cpu[1])},
		Shares: [2][]roleShare{split[0][mid[0]], split[1][mid[1]]},
		// The switches of the same rounds as the shares.
		Switches: [2][]roleShare{switches[0][mid[0]], switches[1][mid[1]]},
	}
	for side := range urls {
		if a.lookups[side] && requests[side] > 0 {
			r.Lookups[side], r.GetPaths[side] = true, lookups[side]/requests[side]
		}
	}
	for side, u := range urls {
		calls, failed, err := countSyscalls(c.work, sides[side], cpus, u, scripts[side], c.o.conns, c.o.traceTime)
		if err != nil {
			return row{}, err
		}
		r.Syscalls[side], r.Failed[side] = calls, failed
	}
	if a.pprof != "" && c.profiles(r.Mogway < r.Reference) {
		prof, err := c.profile(a.name, a.pprof, a.mogURL, scripts[0])
		if err != nil {
			return row{}, err
		}
		r.Profile = prof
	}
	return r, nil
}

// nginxRSS is the peak RSS of nginx's worker (the child of the master process).
func nginxRSS(p *proc) int64 {
	if p == nil {
		return 0
	}
	if !p.isNginx() {
		return p.peakRSS()
	}
	workers := nginxWorkers(p)
	if workers == nil {
		return p.peakRSS()
	}
	var total int64
	for _, pid := range workers {
		total += vmHWM(pid)
	}
	return total
}

// fetchAll downloads url once and returns the bytes per second.
func fetchAll(url string, want int64) (float64, error) {
	t0 := time.Now()
	resp, err := http.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != 200 || n != want {
		return 0, fmt.Errorf("GET %s: %s, %d bytes, want %d", url, resp.Status, n, want)
	}
	return float64(n) / time.Since(t0).Seconds(), nil
}

func (c *cluster) download(big object) (row, error) {
	gw := c.gateways[gwNoCache]
	urls := [2]string{localURL(gwNoCache, "/bench/big"), localURL(ngx.Proxy, big.path)}
	t, err := transfers(urls, [2][]*proc{c.mogSide(gw), c.refSide(c.nginx)}, big.size, c.o.rounds,
		func(u string) (float64, error) { return fetchAll(u, big.size) })
	if err != nil {
		return row{}, err
	}
	return t.row(fmt.Sprintf("streamed download %d MiB (one client)", big.size>>20), "nginx proxy_pass",
		[2]int64{gw.peakRSS(), nginxRSS(c.nginx)}), nil
}

// transferred is what transfers measured: each side's median MB/s and server CPU µs per MiB moved,
// and the CPU split by role of the round whose CPU is the median.
type transferred struct {
	mbps, cpu [2]float64
	split     [2][]roleShare
}

// transfers moves size bytes with move (a download or an upload of the URL, returning bytes per
// second) on each side in turn, rounds times, and reads the CPU time of each role of the side's
// processes around every transfer.
func transfers(urls [2]string, sides [2][]*proc, size int64, rounds int, move func(url string) (float64, error)) (transferred, error) {
	byRole := [2][]role{roles(sides[0]...), roles(sides[1]...)}
	var bps, cpu [2][]float64
	var split [2][][]roleShare
	for range rounds {
		for side, u := range urls {
			t0 := roleTicks(byRole[side])
			v, err := move(u)
			if err != nil {
				return transferred{}, err
			}
			s := shares(byRole[side], t0, roleTicks(byRole[side]), float64(size)/(1<<20))
			bps[side] = append(bps[side], v/(1<<20))
			cpu[side] = append(cpu[side], total(s))
			split[side] = append(split[side], s)
		}
	}
	var t transferred
	for side := range 2 {
		t.mbps[side], t.cpu[side] = median(bps[side]), median(cpu[side])
		t.split[side] = split[side][medianIndex(cpu[side])]
	}
	return t, nil
}

// row is the results row of the transfers.
func (t transferred) row(scenario, refName string, rss [2]int64) row {
	return row{Scenario: scenario, Unit: "MB/s", RefName: refName, Mogway: t.mbps[0], Reference: t.mbps[1],
		CPU: t.cpu, Shares: t.split, RSS: rss}
}

// failover kills storage node 2 a third of the way into a load run against each side, then restarts it.
func (c *cluster) failover(k4 object) (row, error) {
	urls := []string{localURL(gwNoCache, k4.path), localURL(ngx.Proxy, k4.path)}
	var res [2]wrkResult
	d := c.o.duration * 2
	for side, u := range urls {
		if err := warm(u); err != nil {
			return row{}, err
		}
		type out struct {
			r   wrkResult
			err error
		}
		ch := make(chan out, 1)
		go func() {
			r, err := runWrk(loadCPUs, u, "", c.o.conns, d)
			ch <- out{r, err}
		}()
		time.Sleep(d / 3)
		c.nodes[1].kill()
		o := <-ch
		if o.err != nil {
			return row{}, o.err
		}
		res[side] = o.r
		if err := c.startNode(1); err != nil {
			return row{}, err
		}
	}
	return row{
		Scenario: "failover: storage node killed mid-run (upstream group, 4 KiB)", Unit: "req/s",
		RefName: "nginx proxy_next_upstream", Mogway: res[0].RPS, Reference: res[1].RPS,
		P50:    [2]time.Duration{res[0].P50, res[1].P50},
		P99:    [2]time.Duration{res[0].P99, res[1].P99},
		Errors: [2]int64{res[0].Errors, res[1].Errors},
	}, nil
}
