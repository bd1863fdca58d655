//go:build unix

package sqlite

import (
	"os"

	"golang.org/x/sys/unix"
)

// mapReadOnly maps the first n bytes of f read-only and shared, so writes by other processes
// show in the mapping.
func mapReadOnly(f *os.File, n int) ([]byte, error) {
	return unix.Mmap(int(f.Fd()), 0, n, unix.PROT_READ, unix.MAP_SHARED)
}

func unmap(b []byte) error { return unix.Munmap(b) }
