package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// trackerConns is the number of persistent connections the get_paths rows keep open.
const trackerConns = 16

// getPaths measures the tracker alone: trackerConns persistent connections sending get_paths for
// the 4 KiB object, each waiting for its answer before the next request. With verify the tracker
// HEADs a storage node per request (the default); without, the request says noverify=1. The row
// gives the median rate over the rounds and, in its name, the tracker's CPU time per request
// (utime+stime from /proc over the measured window), which is steadier than the rate on a shared
// machine.
func (c *cluster) getPaths(verify bool) (row, error) {
	req := "get_paths domain=" + domain + "&key=4k"
	name := "tracker get_paths, verify (16 connections)"
	if !verify {
		req += "&noverify=1"
		name = "tracker get_paths, noverify=1 (16 connections)"
	}
	req += "\r\n"
	if _, err := trackerLoad(req, 200*time.Millisecond); err != nil { // warm-up: connections, caches
		return row{}, err
	}
	pid := c.tracker.cmd.Process.Pid
	var rps, cpuPerReq []float64
	var failed int64
	for range c.o.rounds {
		cpu0, err := cpuTicks(pid)
		if err != nil {
			return row{}, err
		}
		res, err := trackerLoad(req, c.o.duration)
		if err != nil {
			return row{}, err
		}
		cpu1, err := cpuTicks(pid)
		if err != nil {
			return row{}, err
		}
		failed += res.failed
		rps = append(rps, float64(res.done)/res.elapsed.Seconds())
		if res.done > 0 {
			cpuPerReq = append(cpuPerReq, perRequest(cpu1-cpu0, float64(res.done)))
		}
	}
	cpu := median(cpuPerReq)
	fmt.Fprintf(os.Stderr, "%s: %.0f req/s, %.1f tracker CPU-µs per request (%s per core)\n", name, median(rps), cpu, perCore(cpu))
	r := row{
		Scenario: fmt.Sprintf("%s; %.1f µs tracker CPU per request, %s per core", name, cpu, perCore(cpu)), Unit: "req/s",
		RefName: "no reference (mogilefsd is not packaged)",
		Mogway:  median(rps), Errors: [2]int64{failed, 0},
		RSS: [2]int64{c.tracker.peakRSS(), 0},
	}
	if c.profiles(true) { // where a get_paths spends its time, from a separate load run (no reference)
		prof, err := c.profileUnder(name, pprofAddr(17001), func(d time.Duration) error {
			_, err := trackerLoad(req, d)
			return err
		})
		if err != nil {
			return row{}, err
		}
		r.Profile = prof
	}
	return r, nil
}

// perCore is the rate one core would sustain at cpu µs per request, e.g. "48.8k/s"; the measured
// rate is lower on a machine whose other core also runs the load generator.
func perCore(cpu float64) string {
	if cpu <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.1fk/s", 1e3/cpu)
}

// loadResult is what one trackerLoad run did.
type loadResult struct {
	done, failed int64
	elapsed      time.Duration
}

// trackerLoad sends req on trackerConns connections for d (a bounded loop: each connection stops at
// the deadline or its first failure) and counts the OK answers. Anything but an OK line is a failure.
func trackerLoad(req string, d time.Duration) (loadResult, error) {
	conns := make([]net.Conn, 0, trackerConns)
	defer func() {
		for _, nc := range conns {
			nc.Close()
		}
	}()
	for range trackerConns {
		nc, err := net.Dial("tcp", trackerAddr)
		if err != nil {
			return loadResult{}, err
		}
		conns = append(conns, nc)
	}
	var done, failed atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	stop := start.Add(d)
	for _, nc := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			br := bufio.NewReader(nc)
			b := []byte(req)
			for time.Now().Before(stop) {
				if _, err := nc.Write(b); err != nil {
					failed.Add(1)
					return
				}
				line, err := br.ReadSlice('\n')
				if err != nil || !bytes.HasPrefix(line, []byte("OK ")) {
					failed.Add(1)
					return
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	return loadResult{done: done.Load(), failed: failed.Load(), elapsed: time.Since(start)}, nil
}
