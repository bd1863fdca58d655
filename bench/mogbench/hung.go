package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// The "storage node hung" rows (issue 11): a node whose process is stopped with SIGSTOP still
// accepts connections in the kernel but never answers. 20 connections with a 3 s client timeout read
// a 64 KiB object with two copies while each node is stopped for 5 s in turn.
const (
	hungConns    = 20
	hungTimeout  = 3 * time.Second
	hungFreeze   = 5 * time.Second
	hungGap      = time.Second
	hungDuration = 3*hungGap + 2*hungFreeze // wrk's run: a gap before, between and after the freezes
)

// ngxHung is the port of the reference for the hung rows: nginx proxy_pass to both nodes with
// proxy_next_upstream error timeout and 1 s connect and read timeouts. nginx documents both timeouts
// (default 60 s) as bounds of one connect and of one wait between two reads; 1 s is the tightest that
// still serves a storage node answering a 64 KiB read on a loaded machine.
const ngxHung = 18099

// hungRow runs the load against the gateway URL mogURL (route names the route) and against nginx,
// each with the nodes stopped in turn.
func (c *cluster) hungRow(route, mogURL string, obj object) (row, error) {
	ngxProc, err := c.startHungNginx()
	if err != nil {
		return row{}, err
	}
	defer ngxProc.stop()
	var res [2]wrkResult
	var maxLat [2]time.Duration
	for side, u := range []string{mogURL, localURL(ngxHung, obj.path)} {
		if err := warm(u); err != nil {
			return row{}, err
		}
		r, m, err := c.hungRun(u)
		if err != nil {
			return row{}, err
		}
		res[side], maxLat[side] = r, m
	}
	return row{
		Scenario: fmt.Sprintf("storage node hung, %s (64 KiB, %d conns, 3 s timeout, each node SIGSTOPped %v in turn; max latency %s / %s)",
			route, hungConns, hungFreeze, fmtDur(maxLat[0]), fmtDur(maxLat[1])),
		Unit: "req/s", RefName: "nginx proxy_next_upstream error timeout, 1 s timeouts",
		Mogway: res[0].RPS, Reference: res[1].RPS,
		P50:    [2]time.Duration{res[0].P50, res[1].P50},
		P99:    [2]time.Duration{res[0].P99, res[1].P99},
		Errors: [2]int64{res[0].Errors, res[1].Errors},
	}, nil
}

// hungRun runs wrk against u for hungDuration while stopping each storage node for hungFreeze in
// turn. The nodes are always continued (SIGCONT) before it returns, error or not.
func (c *cluster) hungRun(u string) (wrkResult, time.Duration, error) {
	type out struct {
		r   wrkResult
		max time.Duration
		err error
	}
	ch := make(chan out, 1)
	go func() {
		r, m, err := runWrkHung(u)
		ch <- out{r, m, err}
	}()
	for _, n := range c.nodes {
		time.Sleep(hungGap) // the schedule of the load run
		if err := freezeFor(n, hungFreeze); err != nil {
			<-ch
			return wrkResult{}, 0, err
		}
	}
	o := <-ch
	return o.r, o.max, o.err
}

// freezeFor stops p with SIGSTOP for d, then continues it; it is continued even when stopping fails.
func freezeFor(p *proc, d time.Duration) error {
	pid := p.cmd.Process.Pid
	defer syscall.Kill(pid, syscall.SIGCONT)
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		return fmt.Errorf("SIGSTOP %s: %w", p.name, err)
	}
	time.Sleep(d)
	return nil
}

// runWrkHung runs wrk with the hung rows' connections and client timeout; wrk counts a request
// unanswered after --timeout as a timeout socket error and leaves it out of the latency figures.
// It returns the result and the slowest answer.
func runWrkHung(u string) (wrkResult, time.Duration, error) {
	out, err := wrkOutput(loadCPUs, u, "", hungConns, hungDuration, hungTimeout)
	if err != nil {
		return wrkResult{}, 0, err
	}
	// What the errors were (timeouts or answers other than 2xx/3xx) is worth seeing in the log.
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "Socket errors") || strings.Contains(line, "Non-2xx") {
			fmt.Fprintf(os.Stderr, "   %s: %s\n", u, strings.TrimSpace(line))
		}
	}
	r, err := parseWrk(out)
	return r, wrkMax(out), err
}

// wrkMax is the Max column of wrk's "Latency" thread statistics line.
func wrkMax(out []byte) time.Duration {
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if fs := strings.Fields(sc.Text()); len(fs) >= 4 && fs[0] == "Latency" {
			return parseDur(fs[3])
		}
	}
	return 0
}

// startHungNginx starts the reference of the hung rows: its own nginx on ngxHung.
func (c *cluster) startHungNginx() (*proc, error) {
	dir := filepath.Join(c.work, "nginx-hung")
	conf := nginxHead(dir, 1, 4096) + fmt.Sprintf(`  upstream storage {
    server %[1]s max_fails=1 fail_timeout=10s;
    server %[2]s max_fails=1 fail_timeout=10s;
    keepalive 64;
  }
  server {
    listen 127.0.0.1:%[3]d;
    location / {
      proxy_pass http://storage;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_next_upstream error timeout;
      proxy_connect_timeout 1s;
      proxy_read_timeout 1s;
    }
  }
}
`, nodeA, nodeB, ngxHung)
	return c.startNginx("nginx-hung", dir, conf, ngxHung)
}
