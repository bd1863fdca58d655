package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Efficiency is measured next to throughput: server CPU time per request and system calls per
// request, both summed over every server process of a side. They are far steadier than req/s on a
// shared machine, because they do not depend on how much of the core the side was given.

// clockTicks is the kernel's clock tick (USER_HZ), the unit of utime and stime in /proc/PID/stat.
var clockTicks = func() float64 {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err == nil {
		if v, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64); err == nil && v > 0 {
			return v
		}
	}
	return 100
}()

// cpuTicks returns utime+stime (in clock ticks) of pid, all its threads included.
func cpuTicks(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStatCPU(data)
}

// parseStatCPU reads utime and stime (fields 14 and 15, proc(5)) from the text of /proc/PID/stat. The
// command name (field 2) is in parentheses and may hold spaces, so fields are counted after its last ')'.
func parseStatCPU(stat []byte) (int64, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("/proc stat: no command name")
	}
	fs := strings.Fields(string(stat[i+1:]))
	if len(fs) < 13 {
		return 0, fmt.Errorf("/proc stat: %d fields after the command name", len(fs))
	}
	utime, err1 := strconv.ParseInt(fs[11], 10, 64)
	stime, err2 := strconv.ParseInt(fs[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("/proc stat: %w", err)
	}
	return utime + stime, nil
}

// perRequest is CPU µs per unit of work (a request, or a MiB moved) for ticks spent on units of it.
func perRequest(ticks int64, units float64) float64 {
	if units <= 0 {
		return 0
	}
	return float64(ticks) * 1e6 / clockTicks / units
}

// pids returns the process ids of the daemons in ps, nginx's worker processes included, each once,
// grouped by role.
func pids(ps ...*proc) []int { return rolePids(roles(ps...)) }

// rolePids returns the process ids of every role in rs, in their order.
func rolePids(rs []role) []int {
	var out []int
	for _, r := range rs {
		out = append(out, r.pids...)
	}
	return out
}

// procPids is p's process id and, for an nginx master, its workers'.
func procPids(p *proc) []int {
	if p.isNginx() {
		return append([]int{p.cmd.Process.Pid}, nginxWorkers(p)...)
	}
	return []int{p.cmd.Process.Pid}
}

// isNginx reports whether p is an nginx master (named nginx or nginx-*), whose workers serve.
func (p *proc) isNginx() bool { return p.name == "nginx" || strings.HasPrefix(p.name, "nginx-") }

// countSyscalls runs wrk against url (with the optional Lua script) for d while strace counts the system calls of every thread of
// pids (strace -c -f), and returns the calls and failed calls per request. It is a separate pass from
// the timed rounds: tracing slows a server down many times, but the calls a request makes stay the same.
func countSyscalls(work string, pids []int, cpus, url, script string, conns int, d time.Duration) (calls, failed float64, err error) {
	out := filepath.Join(work, "strace.out")
	args := []string{"-c", "-f", "-q", "-o", out}
	for _, pid := range pids {
		args = append(args, "-p", strconv.Itoa(pid))
	}
	cmd := exec.Command("strace", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return 0, 0, fmt.Errorf("strace: %w", err)
	}
	time.Sleep(500 * time.Millisecond) // attaching to every thread
	r, werr := runWrk(cpus, url, script, conns, d)
	_ = cmd.Process.Signal(syscall.SIGINT)
	if err := cmd.Wait(); err != nil && cmd.ProcessState.ExitCode() > 0 {
		return 0, 0, fmt.Errorf("strace: %v: %s", err, stderr.Bytes())
	}
	if werr != nil {
		return 0, 0, werr
	}
	summary, err := os.ReadFile(out)
	if err != nil {
		return 0, 0, err
	}
	n, nerr, err := parseStraceTotal(summary)
	if err != nil || r.Requests == 0 {
		return 0, 0, err
	}
	return float64(n) / float64(r.Requests), float64(nerr) / float64(r.Requests), nil
}

// parseStraceTotal reads the calls and errors of the "total" line of a strace -c summary:
//
//	100.00    0.081935           1     61523      8101 total
//
// The errors column is empty when no call failed.
func parseStraceTotal(summary []byte) (calls, failed int64, err error) {
	sc := bufio.NewScanner(bytes.NewReader(summary))
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 5 || fs[len(fs)-1] != "total" {
			continue
		}
		calls, err = strconv.ParseInt(fs[3], 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("strace total line %q: %w", sc.Text(), err)
		}
		if len(fs) == 6 {
			failed, err = strconv.ParseInt(fs[4], 10, 64)
			if err != nil {
				return 0, 0, fmt.Errorf("strace total line %q: %w", sc.Text(), err)
			}
		}
		return calls, failed, nil
	}
	return 0, 0, fmt.Errorf("no total line in the strace summary:\n%s", summary)
}
