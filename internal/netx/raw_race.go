//go:build linux && race

package netx

import (
	"errors"
	"syscall"
)

// Under the race detector RawTCP reads and writes with the syscall package's Read and Write, which
// tell the detector that bytes written to a socket happen before they are read from it (a raw call
// does not, and the detector would report every hand-off through a socket as a race).

func sysRead(fd uintptr, p []byte) (int, syscall.Errno) {
	n, err := syscall.Read(int(fd), p)
	return max(n, 0), errno(err)
}

func sysWrite(fd uintptr, p []byte) (int, syscall.Errno) {
	n, err := syscall.Write(int(fd), p)
	return max(n, 0), errno(err)
}

func errno(err error) syscall.Errno {
	var e syscall.Errno
	if err != nil && !errors.As(err, &e) {
		return syscall.EIO
	}
	return e
}
