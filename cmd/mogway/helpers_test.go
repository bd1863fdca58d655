package main

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// waitTimeout bounds every wait of the end-to-end tests: a daemon's start-up, a replica showing up.
const waitTimeout = 60 * time.Second

// pollInterval is the pause between two looks at a condition that is polled with a deadline.
const pollInterval = 20 * time.Millisecond

// proc is a daemon subcommand running in-process through run, as `mogway ROLE ...` would run.
type proc struct {
	name   string
	args   []string
	stderr *syncBuffer
	cancel context.CancelFunc
	done   chan int // receives the exit status once
	code   int      // exit status, valid after stop
	exited bool
}

// startDaemon runs `mogway args...` in a goroutine with its own cancellable context. The daemon is
// stopped at t.Cleanup if the test did not stop it; a non-zero exit status then fails the test.
func startDaemon(t *testing.T, args ...string) *proc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	d := &proc{name: strings.Join(args, " "), args: args, stderr: &syncBuffer{}, cancel: cancel, done: make(chan int, 1)}
	go func() {
		d.done <- run(ctx, &env{stdin: strings.NewReader(""), stdout: d.stderr, stderr: d.stderr}, args)
	}()
	t.Cleanup(func() {
		if d.exited {
			return
		}
		if code := d.stop(t); code != 0 {
			t.Errorf("mogway %s stopped with exit %d, want 0; log:\n%s", d.name, code, d.stderr.String())
		}
	})
	return d
}

// stop cancels the daemon's context, as SIGTERM does, and returns its exit status.
func (d *proc) stop(t *testing.T) int {
	t.Helper()
	if d.exited {
		return d.code
	}
	d.cancel()
	return d.wait(t, "did not stop within %v after its context was cancelled")
}

// waitLog polls the daemon's log until re matches and returns the submatches. It fails the test
// when the daemon exits first or nothing matches within waitTimeout.
func (d *proc) waitLog(t *testing.T, re *regexp.Regexp) []string {
	t.Helper()
	m, exited := d.waitLogOrExit(t, re)
	if exited {
		t.Fatalf("mogway %s exited with %d before logging %q; log:\n%s", d.name, d.code, re, d.stderr.String())
	}
	return m
}

// waitLogOrExit is waitLog for a daemon that may fail to start: it reports whether the daemon
// exited before re matched.
func (d *proc) waitLogOrExit(t *testing.T, re *regexp.Regexp) (match []string, exited bool) {
	t.Helper()
	return waitOutput(t, d.name, re, d.stderr.String, func() bool {
		select {
		case d.code = <-d.done:
			d.exited = true
			return true
		default:
			return false
		}
	})
}

// waitOutput polls the output of the process called name until re matches and returns the
// submatches, or returns exited true once gone reports that the process has ended. It fails the test
// when neither happens within waitTimeout.
func waitOutput(t *testing.T, name string, re *regexp.Regexp, output func() string, gone func() bool) (match []string, exited bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		if m := re.FindStringSubmatch(output()); m != nil {
			return m, false
		}
		if gone() {
			return nil, true
		}
		if time.Now().After(deadline) {
			t.Fatalf("mogway %s did not log %q within %v; log:\n%s", name, re, waitTimeout, output())
		}
		time.Sleep(pollInterval) // polling interval, not synchronisation
	}
}

// exitStatus waits for a daemon that is expected to stop on its own (a failed start-up) and
// returns its exit status.
func (d *proc) exitStatus(t *testing.T) int {
	t.Helper()
	if d.exited {
		return d.code
	}
	return d.wait(t, "still runs after %v")
}

// wait waits up to waitTimeout for the daemon to exit and returns its exit status; when it does
// not, the test fails with what, formatted with waitTimeout, and the daemon's log.
func (d *proc) wait(t *testing.T, what string) int {
	t.Helper()
	select {
	case d.code = <-d.done:
		d.exited = true
	case <-time.After(waitTimeout):
		t.Fatalf("mogway %s %s; log:\n%s", d.name, fmt.Sprintf(what, waitTimeout), d.stderr.String())
	}
	return d.code
}

// cliResult is the outcome of one CLI command run in-process.
type cliResult struct {
	args   []string
	code   int
	stdout string
	stderr string
}

func (r cliResult) String() string {
	return "mogway " + strings.Join(r.args, " ") + " = exit " + strconv.Itoa(r.code) + "\nstdout:\n" + r.stdout + "\nstderr:\n" + r.stderr
}

// mog runs `mogway args...` in-process with stdin and returns what it did.
func mog(t *testing.T, stdin string, args ...string) cliResult {
	t.Helper()
	code, out, errs := runCLI(t, stdin, args...)
	return cliResult{args: args, code: code, stdout: out, stderr: errs}
}

// mustMog runs `mogway args...` and fails the test unless it exits 0.
func mustMog(t *testing.T, args ...string) cliResult {
	t.Helper()
	r := mog(t, "", args...)
	if r.code != 0 {
		t.Fatalf("%v\nwant exit 0", r)
	}
	return r
}

// pollMog runs `mogway args...` until ok accepts the result, and returns that result. It fails the
// test with the last result when waitTimeout passes first.
func pollMog(t *testing.T, what string, ok func(cliResult) bool, args ...string) cliResult {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		r := mog(t, "", args...)
		if ok(r) {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s; last run:\n%v", waitTimeout, what, r)
		}
		time.Sleep(pollInterval * 5) // polling interval, not synchronisation
	}
}
