package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// wrkResult is what one wrk run reports.
type wrkResult struct {
	RPS      float64
	P50, P99 time.Duration
	Requests int64
	Errors   int64 // socket errors plus non-2xx/3xx responses
	BytesSec float64
}

// runWrk runs wrk pinned to cpus against url for d with conns connections. script, when not empty, is
// a wrk Lua script file (`-s`) that writes the requests, such as one rotating the request path.
func runWrk(cpus, url, script string, conns int, d time.Duration, headers ...string) (wrkResult, error) {
	out, err := wrkOutput(cpus, url, script, conns, d, 10*time.Second, headers...)
	if err != nil {
		return wrkResult{}, err
	}
	return parseWrk(out)
}

// wrkOutput runs wrk (one thread, latency distribution) pinned to cpus against url for d with conns
// connections, a client timeout and the optional Lua script, and returns its output.
func wrkOutput(cpus, url, script string, conns int, d, timeout time.Duration, headers ...string) ([]byte, error) {
	out, err := exec.Command("taskset", wrkArgs(cpus, url, script, conns, d, timeout, headers)...).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("wrk %s: %v\n%s", url, err, out)
	}
	return out, nil
}

// wrkArgs is the argument list of taskset that runs wrk as wrkOutput describes. The duration is in
// whole seconds, as wrk takes it.
func wrkArgs(cpus, url, script string, conns int, d, timeout time.Duration, headers []string) []string {
	args := []string{"-c", cpus, "wrk", "-t1", "-c" + strconv.Itoa(conns), "-d" + strconv.Itoa(int(d.Seconds())) + "s",
		"--latency", "--timeout", timeout.String()}
	if script != "" {
		args = append(args, "-s", script)
	}
	for _, h := range headers {
		args = append(args, "-H", h)
	}
	return append(args, url)
}

func parseWrk(out []byte) (wrkResult, error) {
	var r wrkResult
	sc := bufio.NewScanner(bytes.NewReader(out))
	inDist := false
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		fs := strings.Fields(line)
		switch {
		case strings.HasPrefix(line, "Latency Distribution"):
			inDist = true
		case inDist && len(fs) == 2 && fs[0] == "50%":
			r.P50 = parseDur(fs[1])
		case inDist && len(fs) == 2 && fs[0] == "99%":
			r.P99 = parseDur(fs[1])
			inDist = false
		case strings.HasPrefix(line, "Requests/sec:") && len(fs) == 2:
			r.RPS, _ = strconv.ParseFloat(fs[1], 64)
		case strings.HasPrefix(line, "Transfer/sec:") && len(fs) == 2:
			r.BytesSec = parseBytes(fs[1])
		case strings.Contains(line, "requests in") && len(fs) > 0:
			r.Requests, _ = strconv.ParseInt(fs[0], 10, 64)
		case strings.HasPrefix(line, "Socket errors:"):
			// Socket errors: connect 0, read 0, write 0, timeout 0
			for _, part := range strings.Split(strings.TrimPrefix(line, "Socket errors:"), ",") {
				p := strings.Fields(part)
				if len(p) == 2 {
					n, _ := strconv.ParseInt(p[1], 10, 64)
					r.Errors += n
				}
			}
		case strings.HasPrefix(line, "Non-2xx or 3xx responses:") && len(fs) == 5:
			n, _ := strconv.ParseInt(fs[4], 10, 64)
			r.Errors += n
		}
	}
	if r.RPS == 0 && r.Requests == 0 {
		return r, fmt.Errorf("could not parse wrk output:\n%s", out)
	}
	return r, nil
}

func parseDur(s string) time.Duration {
	for _, u := range []struct {
		suf string
		m   time.Duration
	}{{"us", time.Microsecond}, {"ms", time.Millisecond}, {"s", time.Second}, {"m", time.Minute}} {
		if strings.HasSuffix(s, u.suf) {
			f, err := strconv.ParseFloat(strings.TrimSuffix(s, u.suf), 64)
			if err == nil {
				return time.Duration(f * float64(u.m))
			}
		}
	}
	return 0
}

func parseBytes(s string) float64 {
	mult := 1.0
	for _, u := range []struct {
		suf string
		m   float64
	}{{"GB", 1 << 30}, {"MB", 1 << 20}, {"KB", 1 << 10}, {"B", 1}} {
		if strings.HasSuffix(s, u.suf) {
			mult = u.m
			s = strings.TrimSuffix(s, u.suf)
			break
		}
	}
	f, _ := strconv.ParseFloat(s, 64)
	return f * mult
}
