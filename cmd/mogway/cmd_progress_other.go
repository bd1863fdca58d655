//go:build !linux

package main

import "os"

// isTTY reports whether f is a character device. It is an approximation kept for builds other
// than Linux, where the terminal ioctl differs: it mistakes /dev/null for a terminal.
func isTTY(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
