package storaged

import (
	"io"
	"io/fs"
	"os"
	"syscall"
	"time"

	"github.com/mogway/mogway/internal/httpsem"
)

// getFile is a file opened for GET or HEAD. Opened with openat2 it is a bare descriptor that turns
// into an *os.File only when its body is streamed, so the common small reply costs no fcntl, no
// poller registration and no finalizer; opened through os.Root it is f from the start. A small file
// may come from the open-file cache (of), whose descriptor is shared: it is only read with pread
// and never becomes an *os.File.
type getFile struct {
	fd int
	f  *os.File // owns fd when not nil

	fc   *fileCache // where a small file's descriptor goes on close; nil: none
	of   *openFile  // the cached entry fd belongs to; close releases it
	rel  string     // path of the file, the key in fc
	meta fileMeta   // set by openGet for a cached file, by stat otherwise
	hd   *fileHead  // built from meta by head, or the cached entry's
	// roots is rootCache.replaced before a small file was opened, for fc.put.
	roots uint64
	stated,
	keep bool // meta is set; the descriptor may be kept in fc on close
}

// fileMeta is what GET needs of a file's status.
type fileMeta struct {
	mode     fs.FileMode // type bits only: ModeDir, ModeSymlink, ... or 0 for a regular file
	size     int64
	mtime    time.Time
	dev, ino uint64 // identity (openat2 only)
}

// same reports whether m and o describe a file alike.
func (m fileMeta) same(o fileMeta) bool {
	return m.mode == o.mode && m.size == o.size && m.mtime.Equal(o.mtime) && m.dev == o.dev && m.ino == o.ino
}

// fileHead is a file's status with the header values GET and HEAD answer from it, formatted once:
// a cached file keeps its fileHead, so a hit formats no date and builds no ETag.
type fileHead struct {
	meta         fileMeta
	etag         string
	lastModified []byte // meta.mtime as an HTTP date
}

func newFileHead(fm fileMeta) *fileHead {
	return &fileHead{meta: fm, etag: makeETag(fm.size, fm.mtime), lastModified: httpsem.AppendDate(nil, fm.mtime)}
}

// openGet opens rel read-only through the cached root of its device. A small file kept open in the
// open-file cache is used while it is trusted, unless check is set, or when a stat of rel finds the
// same file there.
func (d docroot) openGet(rel string, check bool) (getFile, error) {
	dev, inner, err := splitDev(rel)
	if err != nil {
		return getFile{fd: -1}, err
	}
	if d.reads.beneath {
		roots := d.reads.replaced.Load()
		if d.files != nil {
			if e, hd := d.files.acquire(rel, roots); e != nil {
				if hd == nil || check {
					hd = nil
					fm, err := withRoot(d.reads, dev, inner, (*devRoot).statBeneath)
					if err == nil && fm.dev == e.dev && fm.ino == e.ino && fm.mode == 0 && fm.size <= smallFileSize {
						hd = d.files.checked(e, fm, roots)
					}
				}
				if hd != nil {
					return getFile{fd: e.fd, fc: d.files, of: e, meta: hd.meta, hd: hd, stated: true}, nil
				}
				// Replaced, removed or grown: the path is opened afresh.
				d.files.drop(e)
				d.files.release(e)
			}
		}
		fd, err := withRoot(d.reads, dev, inner, (*devRoot).openBeneathFd)
		return getFile{fd: fd, fc: d.files, rel: rel, roots: roots}, err
	}
	f, err := d.reads.open(dev, inner)
	if err != nil {
		return getFile{fd: -1}, err
	}
	return getFile{fd: int(f.Fd()), f: f}, nil
}

func (g *getFile) stat() (fileMeta, error) {
	if g.stated {
		return g.meta, nil
	}
	if g.f != nil {
		fi, err := g.f.Stat()
		if err != nil {
			return fileMeta{}, err
		}
		g.meta, g.stated = fileMeta{mode: fi.Mode().Type(), size: fi.Size(), mtime: fi.ModTime()}, true
		return g.meta, nil
	}
	fm, err := fstatMeta(g.fd)
	if err != nil {
		return fileMeta{}, err
	}
	g.meta, g.stated = fm, true
	g.keep = g.fc != nil && fm.mode == 0 && fm.size <= smallFileSize
	return fm, nil
}

// head returns the file's status and header values; stat must have succeeded.
func (g *getFile) head() *fileHead {
	if g.hd == nil {
		g.hd = newFileHead(g.meta)
	}
	return g.hd
}

// readAt reads len(buf) bytes from offset off of the file; a shorter file is io.ErrUnexpectedEOF.
// It leaves the file offset alone, which a cached descriptor shares with other requests.
func (g *getFile) readAt(buf []byte, off int64) error {
	for done := 0; done < len(buf); {
		n, err := syscall.Pread(g.fd, buf[done:], off+int64(done))
		switch {
		case err == syscall.EINTR:
			continue
		case err != nil:
			return &fs.PathError{Op: "read", Path: "", Err: err}
		case n == 0:
			return io.ErrUnexpectedEOF
		}
		done += n
	}
	return nil
}

// file hands the descriptor to an *os.File, which owns it from then on. It is not for a cached
// descriptor (openGet serves only small files from the cache, and they are read with readAt).
func (g *getFile) file() *os.File {
	if g.of != nil {
		panic("storaged: a cached descriptor cannot become an *os.File")
	}
	if g.f == nil {
		g.f = os.NewFile(uintptr(g.fd), "")
		g.keep = false
	}
	return g.f
}

// close releases the file: a cached descriptor goes back to the cache, a fresh one of a small file
// is offered to it, anything else is closed.
func (g *getFile) close() {
	switch {
	case g.of != nil:
		g.fc.release(g.of)
		g.of = nil
	case g.f != nil:
		g.f.Close()
	case g.fd >= 0:
		if !g.keep || !g.fc.put(g.rel, g.fd, g.head(), g.roots) {
			syscall.Close(g.fd)
		}
	}
	g.fd = -1
}
