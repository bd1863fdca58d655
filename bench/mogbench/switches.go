package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// Context switches per request, by role, beside the CPU time. With every server of a side on one
// core, a request costs more when its servers go to sleep and are woken for it more often: each
// wake-up is a switch of the core to another process, paid in the kernel by the waker and the woken.
// The count tells such a row apart from one whose code got slower: the CPU per request of a storage
// node rises with its switches per request while its system calls per request stay the same.

// ctxSwitches returns the context switches so far, voluntary and not, of every thread of pid
// (/proc/PID/task/*/status, proc(5)); threads that ended are no longer counted.
func ctxSwitches(pid int) (int64, error) {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	if err != nil {
		return 0, err
	}
	if len(tasks) == 0 {
		return 0, fmt.Errorf("process %d: no threads in /proc", pid)
	}
	var sum int64
	for _, f := range tasks {
		data, err := os.ReadFile(f)
		if err != nil {
			continue // the thread ended between the glob and the read
		}
		n, err := parseCtxSwitches(data)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", f, err)
		}
		sum += n
	}
	return sum, nil
}

// parseCtxSwitches returns voluntary_ctxt_switches + nonvoluntary_ctxt_switches from the text of a
// /proc status file; both lines must be there.
func parseCtxSwitches(status []byte) (int64, error) {
	var sum int64
	found := 0
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		name, value, ok := bytes.Cut(sc.Bytes(), []byte(":"))
		if !ok || !bytes.Equal(name, []byte("voluntary_ctxt_switches")) && !bytes.Equal(name, []byte("nonvoluntary_ctxt_switches")) {
			continue
		}
		n, err := strconv.ParseInt(string(bytes.TrimSpace(value)), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", name, err)
		}
		sum += n
		found++
	}
	if found != 2 {
		return 0, errors.New("no voluntary_ctxt_switches and nonvoluntary_ctxt_switches lines")
	}
	return sum, nil
}

// roleSwitches returns the context switches of each role's processes, in the order of rs.
func roleSwitches(rs []role) []int64 { return roleCounts(rs, ctxSwitches) }

// switchShares returns each role's context switches per request from its counts before and after
// a round of that many requests.
func switchShares(rs []role, before, after []int64, requests float64) []roleShare {
	return perRole(rs, before, after, func(n int64) float64 {
		if requests <= 0 {
			return 0
		}
		return float64(n) / requests
	})
}
