package main

import (
	"os"

	"golang.org/x/sys/unix"
)

// isTTY reports whether f is a terminal: TCGETS, the isatty(3) ioctl, succeeds only on a tty
// (ENOTTY on /dev/null, pipes and files).
func isTTY(f *os.File) bool {
	// Through SyscallConn rather than Fd, which would switch a non-blocking f to blocking mode.
	rc, err := f.SyscallConn()
	if err != nil {
		return false
	}
	var terr error
	if err := rc.Control(func(fd uintptr) { _, terr = unix.IoctlGetTermios(int(fd), unix.TCGETS) }); err != nil {
		return false
	}
	return terr == nil
}
