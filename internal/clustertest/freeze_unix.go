//go:build unix

package clustertest

import (
	"os"
	"syscall"
	"testing"
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
	thaw = func() { p.Signal(syscall.SIGCONT) }
	t.Cleanup(thaw)
	return thaw
}
