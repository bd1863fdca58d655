package storaged

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// rootRecheck is how long a cached device root is trusted before the device path is looked up
// again. A disk mounted on dev<N>, or a dev<N> renamed away and recreated, is read from at most
// this long after the change (at once when a read through the old root finds nothing).
const rootRecheck = time.Second

// rootCache keeps one open *os.Root per device for reads (GET, HEAD, size, MD5), so a read costs
// the walk below the device and not a fresh open, fstat and close of the device directory.
//
// An entry remembers the identity (st_dev, st_ino) of the directory it opened. Once an entry is
// older than recheck, the next read stats the device path (following a symlink, as opening it
// does) and reopens the device when the path now names another directory: a disk mounted over
// it, a directory renamed away and recreated, a symlink pointed elsewhere. A read that finds
// nothing (ENOENT, ENOTDIR, ESTALE) rechecks at once and retries through the new root if there
// is one, so a file stored under a fresh directory is never answered 404 from the old one.
//
// The replaced root is closed at once. os.Root counts the operations in progress and closes its
// descriptor after the last one ends; an operation that starts on a closed root fails with
// fs.ErrClosed and is retried through the current entry.
//
// Where the kernel has openat2(2), an entry also holds an O_PATH descriptor of the same directory
// and a read opens its file with one openat2 call with RESOLVE_BENEATH, which confines the walk to
// the device as os.Root does (no "..", no absolute or escaping symlinks; EXDEV otherwise). os.Root
// walks one openat per path component.
//
// Writes do not use the cache: they open the device afresh for every operation (docroot), so a
// file is never written beneath a disk mounted a moment ago.
//
// A rootCache is safe for concurrent use. Close releases every root.
type rootCache struct {
	dir     string           // absolute path of the docroot
	recheck time.Duration    // age after which an entry is checked against the device path
	now     func() time.Time // clock; tests replace it
	beneath bool             // openat2 with RESOLVE_BENEATH works: entries hold a dir descriptor

	// replaced counts the entries replaced or removed: a file kept open (fileCache) is trusted only
	// while it has not changed since the file was last checked.
	replaced atomic.Uint64

	mu     sync.Mutex          // guards devs and closed
	devs   map[string]*devRoot // open roots by device name ("dev1")
	closed bool                // Close was called: nothing new is cached
}

// devRoot is one cached device directory.
type devRoot struct {
	root     *os.Root
	dir      *os.File        // O_PATH descriptor of the same directory, when the cache uses openat2
	dirConn  syscall.RawConn // of dir: Control keeps the descriptor open while openat2 uses it
	dev, ino uint64          // identity of the directory root was opened on
	checked  atomic.Int64    // when (now().UnixNano()) the device path last named this directory
}

func newRootCache(dir string) *rootCache {
	return &rootCache{dir: dir, recheck: rootRecheck, now: time.Now, devs: map[string]*devRoot{},
		beneath: haveOpenBeneath(dir)}
}

// open opens inner, a path inside device dev, read-only.
func (c *rootCache) open(dev, inner string) (*os.File, error) {
	if c.beneath {
		return withRoot(c, dev, inner, (*devRoot).openBeneath)
	}
	return withRoot(c, dev, inner, func(e *devRoot, name string) (*os.File, error) { return e.root.Open(name) })
}

// stat stats inner, a path inside device dev, following symlinks that stay inside the device.
func (c *rootCache) stat(dev, inner string) (fs.FileInfo, error) {
	return withRoot(c, dev, inner, func(e *devRoot, name string) (fs.FileInfo, error) { return e.root.Stat(name) })
}

// openBeneath opens name read-only below e.dir with one openat2 call.
func (e *devRoot) openBeneath(name string) (*os.File, error) {
	fd, err := e.openBeneathFd(name)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), name), nil
}

// openBeneathFd is openBeneath returning the bare descriptor.
func (e *devRoot) openBeneathFd(name string) (int, error) {
	fd, err := -1, error(nil)
	cerr := e.dirConn.Control(func(dirfd uintptr) {
		fd, err = openBeneath(int(dirfd), name, syscall.O_RDONLY|syscall.O_NOCTTY)
	})
	if cerr != nil {
		return -1, &fs.PathError{Op: "openat2", Path: name, Err: fs.ErrClosed} // e was replaced
	}
	if err != nil {
		return -1, &fs.PathError{Op: "openat2", Path: name, Err: err}
	}
	return fd, nil
}

// statBeneath stats name below e.dir (following symlinks, as an open does). It only validates a
// cached open file: the descriptor served was opened with openBeneathFd.
func (e *devRoot) statBeneath(name string) (fileMeta, error) {
	var fm fileMeta
	var err error
	cerr := e.dirConn.Control(func(dirfd uintptr) { fm, err = statAtMeta(int(dirfd), name) })
	if cerr != nil {
		return fileMeta{}, &fs.PathError{Op: "fstatat", Path: name, Err: fs.ErrClosed} // e was replaced
	}
	if err != nil {
		return fileMeta{}, &fs.PathError{Op: "fstatat", Path: name, Err: err}
	}
	return fm, nil
}

// close closes the root and the descriptor of e; operations in progress on them finish first.
func (e *devRoot) close() {
	e.root.Close()
	if e.dir != nil {
		e.dir.Close()
	}
}

// maxRootAttempts bounds how often withRoot runs op. Each retry follows a device replaced (or a
// lookup the kernel asked to repeat) while op ran, so more than a couple only happen while a device
// directory is being swapped over and over; a request that still loses the race gets 503.
const maxRootAttempts = 16

// withRoot runs op on the cached entry of device dev with inner, the path inside the device.
// When op fails in a way a replaced device explains, the device path is checked and op runs again
// through the new entry, at most maxRootAttempts times in all.
func withRoot[T any](c *rootCache, dev, inner string, op func(e *devRoot, name string) (T, error)) (T, error) {
	var zero T
	e, err := c.get(dev)
	if err != nil {
		return zero, err
	}
	for attempt := 1; ; attempt++ {
		v, err := op(e, inner)
		if err == nil || attempt == maxRootAttempts {
			return v, err
		}
		if errors.Is(err, syscall.EAGAIN) {
			continue // openat2 saw a concurrent rename and asks for the lookup again
		}
		if !maybeReplaced(err) {
			return v, err
		}
		// A closed root, or a stale NFS handle, is reopened even if the path still names it.
		reopen := errors.Is(err, fs.ErrClosed) || errors.Is(err, syscall.ESTALE)
		ne, cerr := c.check(dev, e, reopen)
		if cerr != nil {
			return zero, cerr
		}
		if ne == e && !reopen {
			return v, err // the device is the one we read from: the answer stands
		}
		e = ne
	}
}

// maybeReplaced reports whether err may come from reading a device directory that was replaced.
func maybeReplaced(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) ||
		errors.Is(err, syscall.ESTALE) || errors.Is(err, fs.ErrClosed)
}

// get returns the entry of device dev, opening it when absent and checking it when it is older
// than recheck. Of several requests finding it old at once, one checks; the others use it as is.
func (c *rootCache) get(dev string) (*devRoot, error) {
	c.mu.Lock()
	e := c.devs[dev]
	c.mu.Unlock()
	if e == nil {
		return c.check(dev, nil, false)
	}
	now := c.now().UnixNano()
	last := e.checked.Load()
	if now-last < int64(c.recheck) || !e.checked.CompareAndSwap(last, now) {
		return e, nil
	}
	return c.check(dev, e, false)
}

// check makes sure the entry of dev names the directory at the device path and returns the
// current entry: seen itself when the path still names it, else a newly opened root. seen is the
// entry the caller used (nil: none); reopen replaces it even when the path still names it (its
// root was closed). A missing device returns an error wrapping fs.ErrNotExist.
func (c *rootCache) check(dev string, seen *devRoot, reopen bool) (*devRoot, error) {
	c.mu.Lock()
	cur := c.devs[dev]
	c.mu.Unlock()
	if cur != nil && cur != seen {
		return cur, nil // replaced by another request meanwhile
	}
	path := filepath.Join(c.dir, dev)
	now := c.now().UnixNano()
	if cur != nil && !reopen {
		fi, err := os.Stat(path)
		if err == nil {
			if d, i, ok := identity(fi); ok && d == cur.dev && i == cur.ino {
				cur.checked.Store(now)
				return cur, nil
			}
		}
	}
	fresh, err := openDevRoot(path, c.beneath)
	if fresh != nil {
		fresh.checked.Store(now)
	}
	c.mu.Lock()
	if latest := c.devs[dev]; latest != cur && latest != nil {
		// Another request installed a newer root while this one opened its own: use theirs.
		c.mu.Unlock()
		if fresh != nil {
			fresh.close()
		}
		return latest, nil
	}
	if fresh != nil && !c.closed {
		c.devs[strings.Clone(dev)] = fresh // the caller's may alias a request buffer
	} else {
		delete(c.devs, dev)
	}
	if cur != nil {
		c.replaced.Add(1)
	}
	c.mu.Unlock()
	if cur != nil {
		cur.close() // operations in progress on it finish first (os.Root and os.File count them)
	}
	if err != nil {
		return nil, err
	}
	// After Close the fresh entry is not cached; the finalizers of os.Root and os.File close it
	// once the caller's operation is done with it.
	return fresh, nil
}

// openDevRoot opens the device directory at path and records its identity; withDir adds an
// O_PATH descriptor of the same directory.
func openDevRoot(path string, withDir bool) (*devRoot, error) {
	r, err := os.OpenRoot(path)
	if err != nil {
		return nil, err
	}
	e := &devRoot{root: r}
	fi, err := r.Stat(".")
	if err != nil {
		e.close()
		return nil, err
	}
	d, i, ok := identity(fi)
	if !ok {
		e.close()
		return nil, &fs.PathError{Op: "stat", Path: path, Err: errors.ErrUnsupported}
	}
	e.dev, e.ino = d, i
	if !withDir {
		return e, nil
	}
	fd, err := openDirPath(path)
	if err != nil {
		e.close()
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	e.dir = os.NewFile(uintptr(fd), path)
	if e.dirConn, err = e.dir.SyscallConn(); err != nil {
		e.close()
		return nil, err
	}
	// The path may have been swapped between the two opens: both must name one directory.
	fi, err = e.dir.Stat()
	if err != nil {
		e.close()
		return nil, err
	}
	if d, i, _ := identity(fi); d != e.dev || i != e.ino {
		e.close()
		return nil, &fs.PathError{Op: "open", Path: path, Err: syscall.ESTALE}
	}
	return e, nil
}

func identity(fi fs.FileInfo) (dev, ino uint64, ok bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, false
	}
	return uint64(st.Dev), st.Ino, true
}

// Close closes every cached root; reads in progress finish first. Later reads still work, each
// through a root of its own. Close is idempotent.
func (c *rootCache) Close() error {
	c.mu.Lock()
	devs := c.devs
	c.devs = map[string]*devRoot{}
	c.closed = true
	c.mu.Unlock()
	for _, e := range devs {
		e.close()
	}
	return nil
}
