//go:build linux && (386 || amd64 || arm || arm64 || loong64 || ppc64 || ppc64le || riscv64 || s390x)

package storaged

import (
	"io/fs"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// sysOpenat2 is openat2(2), Linux 5.6, on architectures with the common syscall table.
const sysOpenat2 = 437

// The RESOLVE_* flags of openat2(2).
const (
	resolveNoMagiclinks = 0x02 // no /proc/self/fd style links
	resolveBeneath      = 0x08 // no component may leave dirfd: "..", absolute or escaping links fail with EXDEV
)

// openHow is struct open_how.
type openHow struct {
	flags, mode, resolve uint64
}

// openBeneath opens name below the directory dirfd with openat2 and RESOLVE_BENEATH: one system
// call walks the whole path, and the kernel refuses, with EXDEV, any step that would leave dirfd.
// It retries the EAGAIN the kernel returns when a rename raced with the walk.
func openBeneath(dirfd int, name string, flags int) (int, error) {
	p, err := syscall.BytePtrFromString(name)
	if err != nil {
		return -1, err
	}
	how := openHow{flags: uint64(flags | syscall.O_CLOEXEC), resolve: resolveBeneath | resolveNoMagiclinks}
	for attempt := 0; ; attempt++ {
		fd, _, errno := syscall.Syscall6(sysOpenat2, uintptr(dirfd), uintptr(unsafe.Pointer(p)),
			uintptr(unsafe.Pointer(&how)), unsafe.Sizeof(how), 0, 0)
		if errno == 0 {
			return int(fd), nil
		}
		if (errno == syscall.EAGAIN || errno == syscall.EINTR) && attempt < 8 {
			continue
		}
		return -1, errno
	}
}

// oPath is O_PATH, missing from package syscall on some architectures: a descriptor that names
// a directory for the *at calls without opening it for reading.
const oPath = 0x200000

// openDirPath opens the directory at path as an O_PATH descriptor, following a final symlink.
func openDirPath(path string) (int, error) {
	return syscall.Open(path, oPath|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
}

// haveOpenBeneath reports whether openat2 with RESOLVE_BENEATH works here (Linux 5.6 and later,
// and no seccomp filter refusing it), by opening dir through it.
func haveOpenBeneath(dir string) bool {
	dfd, err := openDirPath(dir)
	if err != nil {
		return false
	}
	defer syscall.Close(dfd)
	fd, err := openBeneath(dfd, ".", oPath|syscall.O_DIRECTORY)
	if err != nil {
		return false
	}
	syscall.Close(fd)
	return true
}

// fstatMeta fstats fd.
func fstatMeta(fd int) (fileMeta, error) {
	var st unix.Stat_t
	for {
		err := unix.Fstat(fd, &st)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fileMeta{}, &fs.PathError{Op: "fstat", Path: "", Err: err}
		}
		return metaOf(&st), nil
	}
}

// statAtMeta stats name relative to the directory dirfd, following symlinks.
func statAtMeta(dirfd int, name string) (fileMeta, error) {
	var st unix.Stat_t
	for {
		err := unix.Fstatat(dirfd, name, &st, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fileMeta{}, err
		}
		return metaOf(&st), nil
	}
}

func metaOf(st *unix.Stat_t) fileMeta {
	var mode fs.FileMode
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
	case unix.S_IFDIR:
		mode = fs.ModeDir
	default:
		mode = fs.ModeIrregular
	}
	return fileMeta{mode: mode, size: st.Size, mtime: time.Unix(int64(st.Mtim.Sec), int64(st.Mtim.Nsec)),
		dev: uint64(st.Dev), ino: uint64(st.Ino)} //nolint:unconvert // the field types differ by architecture
}
