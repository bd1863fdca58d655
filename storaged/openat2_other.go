//go:build !(linux && (386 || amd64 || arm || arm64 || loong64 || ppc64 || ppc64le || riscv64 || s390x))

package storaged

import "syscall"

// openBeneath is not available: reads go through os.Root.
func openBeneath(dirfd int, name string, flags int) (int, error) { return -1, syscall.ENOSYS }

func haveOpenBeneath(dir string) bool { return false }

func openDirPath(path string) (int, error) { return -1, syscall.ENOSYS }

// fstatMeta is not needed without openat2: files come from os.Root as *os.File.
func fstatMeta(fd int) (fileMeta, error) { return fileMeta{}, syscall.ENOSYS }

func statAtMeta(dirfd int, name string) (fileMeta, error) { return fileMeta{}, syscall.ENOSYS }
