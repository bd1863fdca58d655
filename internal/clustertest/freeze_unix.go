//go:build unix

package clustertest

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// FreezeProcess stops p with SIGSTOP, the way a process hangs on a stuck disk or in swap: the
// kernel keeps completing handshakes on its listening sockets, but nothing is read or answered.
// The returned thaw sends SIGCONT; calling it twice is harmless. It is also registered with
// t.Cleanup, so it runs before the cleanups registered earlier, such as the one that stops p (a
// stopped process would not act on SIGTERM). Use it on a `mogway storaged` (or any) child process
// a test started.
func FreezeProcess(t testing.TB, p *os.Process) (thaw func()) {
	t.Helper()
	if err := p.Signal(syscall.SIGSTOP); err != nil {
		t.Fatalf("clustertest: SIGSTOP pid %d: %v", p.Pid, err)
	}
	waitStopped(t, p.Pid)
	thaw = func() { p.Signal(syscall.SIGCONT) }
	t.Cleanup(thaw)
	return thaw
}

// waitStopped waits until every thread of process pid is stopped. kill(2) only makes SIGSTOP
// pending: each thread stops when it next handles signals, and until then the process may still
// answer (under load TestFreezeProcess got HTTP 200 from a node just signalled). Linux shows each
// thread's state in /proc/<pid>/task/<tid>/stat; without procfs it returns at once.
func waitStopped(t testing.TB, pid int) {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/task", pid)
	deadline := time.Now().Add(Timeout)
	for {
		tasks, err := os.ReadDir(dir)
		if err != nil {
			return // no procfs: nothing to wait on
		}
		stopped := true
		for _, task := range tasks {
			stat, err := os.ReadFile(filepath.Join(dir, task.Name(), "stat"))
			if err != nil {
				continue // the thread has exited
			}
			// "tid (comm) S ...": the state follows the last ')', as comm may hold one.
			i := bytes.LastIndexByte(stat, ')')
			if i < 0 || i+2 >= len(stat) || (stat[i+2] != 'T' && stat[i+2] != 't') {
				stopped = false
				break
			}
		}
		if stopped {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("clustertest: pid %d not stopped %v after SIGSTOP", pid, Timeout)
		}
		time.Sleep(time.Millisecond) // polling interval, not synchronisation
	}
}
