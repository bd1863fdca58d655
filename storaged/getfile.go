package storaged

import (
	"io"
	"io/fs"
	"os"
	"syscall"
	"time"
)

// getFile is a file opened for GET or HEAD. Opened with openat2 it is a bare descriptor that turns
// into an *os.File only when its body is streamed, so the common small reply costs no fcntl, no
// poller registration and no finalizer; opened through os.Root it is f from the start.
type getFile struct {
	fd int
	f  *os.File // owns fd when not nil
}

// fileMeta is what GET needs of a file's status.
type fileMeta struct {
	mode  fs.FileMode // type bits only: ModeDir, ModeSymlink, ... or 0 for a regular file
	size  int64
	mtime time.Time
}

// openGet opens rel read-only through the cached root of its device.
func (d docroot) openGet(rel string) (getFile, error) {
	dev, inner, err := splitDev(rel)
	if err != nil {
		return getFile{fd: -1}, err
	}
	if d.reads.beneath {
		fd, err := withRoot(d.reads, dev, inner, (*devRoot).openBeneathFd)
		return getFile{fd: fd}, err
	}
	f, err := d.reads.open(dev, inner)
	if err != nil {
		return getFile{fd: -1}, err
	}
	return getFile{fd: int(f.Fd()), f: f}, nil
}

func (g *getFile) stat() (fileMeta, error) {
	if g.f != nil {
		fi, err := g.f.Stat()
		if err != nil {
			return fileMeta{}, err
		}
		return fileMeta{mode: fi.Mode().Type(), size: fi.Size(), mtime: fi.ModTime()}, nil
	}
	return fstatMeta(g.fd)
}

// readFull reads len(buf) bytes from the start of the file; a shorter file is io.ErrUnexpectedEOF.
func (g *getFile) readFull(buf []byte) error {
	for off := 0; off < len(buf); {
		n, err := syscall.Pread(g.fd, buf[off:], int64(off))
		switch {
		case err == syscall.EINTR:
			continue
		case err != nil:
			return &fs.PathError{Op: "read", Path: "", Err: err}
		case n == 0:
			return io.ErrUnexpectedEOF
		}
		off += n
	}
	return nil
}

// file hands the descriptor to an *os.File, which owns it from then on.
func (g *getFile) file() *os.File {
	if g.f == nil {
		g.f = os.NewFile(uintptr(g.fd), "")
	}
	return g.f
}

func (g *getFile) close() {
	if g.f != nil {
		g.f.Close()
	} else if g.fd >= 0 {
		syscall.Close(g.fd)
	}
	g.fd = -1
}
