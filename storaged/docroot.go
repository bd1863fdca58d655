package storaged

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// docroot resolves paths relative to the docroot, such as "dev1/0/000/000/0000000001.fid".
//
// Each operation opens the device directory (dev1) as an os.Root and works inside it, so nothing
// in a request can reach outside its device: not "..", not a symlink leading elsewhere. The device
// directory itself may be a mount point or a symlink the administrator made (to /mnt/sdb, say).
// Writes look the device up on every call rather than keeping it open, so a disk mounted on
// dev<N> after start-up is used at once and a cached handle never writes beneath a mount point.
// Reads (openGet, OpenRead, StatRead) go through reads, which keeps the device open and checks it against
// the device path at least once a second (see rootCache).
//
// Where reads use openat2, files keeps small files open between GETs (see fileCache); Remove,
// Rename and OpenFile for writing forget the paths they change.
type docroot struct {
	dir   string     // absolute path of the docroot
	reads *rootCache // device roots for reads
	files *fileCache // open small files for GET and HEAD; nil without openat2
}

// newDocroot returns the docroot at dir; a small file kept open for GET is served without a stat
// of its path for valid after the last one (see fileCache).
func newDocroot(dir string, valid time.Duration) docroot {
	d := docroot{dir: dir, reads: newRootCache(dir)}
	if d.reads.beneath {
		d.files = newFileCache(fileCacheMax, fileCacheInactive, valid)
	}
	return d
}

// forget drops rel from the open-file cache, after a change through the docroot.
func (d docroot) forget(rel string) {
	if d.files != nil {
		d.files.forget(rel)
	}
}

// closeReads closes the cached device roots and open files.
func (d docroot) closeReads() {
	if d.files != nil {
		d.files.Close()
	}
	d.reads.Close()
}

// splitDev splits rel into its device and the path inside it ("." for the device itself).
func splitDev(rel string) (dev, inner string, err error) {
	dev, inner, _ = strings.Cut(rel, "/")
	if !isDevName(dev) {
		return "", "", &fs.PathError{Op: "open", Path: rel, Err: fs.ErrNotExist}
	}
	if inner == "" {
		inner = "."
	}
	return dev, inner, nil
}

// OpenRead opens rel for reading through the cached root of its device.
func (d docroot) OpenRead(rel string) (*os.File, error) {
	dev, inner, err := splitDev(rel)
	if err != nil {
		return nil, err
	}
	return d.reads.open(dev, inner)
}

// StatRead stats rel (following symlinks inside the device) through the cached root of its device.
func (d docroot) StatRead(rel string) (os.FileInfo, error) {
	dev, inner, err := splitDev(rel)
	if err != nil {
		return nil, err
	}
	return d.reads.stat(dev, inner)
}

// device opens the device of rel afresh and returns the path inside it ("." for the device itself).
func (d docroot) device(rel string) (*os.Root, string, error) {
	dev, inner, err := splitDev(rel)
	if err != nil {
		return nil, "", err
	}
	r, err := os.OpenRoot(filepath.Join(d.dir, dev))
	if err != nil {
		return nil, "", err
	}
	return r, inner, nil
}

// inDevice runs op on the path of rel inside its device, opened afresh for this one call.
func inDevice[T any](d docroot, rel string, op func(r *os.Root, inner string) (T, error)) (T, error) {
	r, in, err := d.device(rel)
	if err != nil {
		var zero T
		return zero, err
	}
	defer r.Close()
	return op(r, in)
}

func (d docroot) Open(rel string) (*os.File, error) {
	return d.OpenFile(rel, os.O_RDONLY, 0)
}

func (d docroot) OpenFile(rel string, flag int, perm os.FileMode) (*os.File, error) {
	if flag&(os.O_WRONLY|os.O_RDWR|os.O_TRUNC) != 0 {
		defer d.forget(rel)
	}
	return inDevice(d, rel, func(r *os.Root, in string) (*os.File, error) { return r.OpenFile(in, flag, perm) })
}

func (d docroot) Stat(rel string) (os.FileInfo, error) { return inDevice(d, rel, (*os.Root).Stat) }

func (d docroot) Lstat(rel string) (os.FileInfo, error) { return inDevice(d, rel, (*os.Root).Lstat) }

func (d docroot) Remove(rel string) error {
	defer d.forget(rel)
	_, err := inDevice(d, rel, func(r *os.Root, in string) (struct{}, error) { return struct{}{}, r.Remove(in) })
	return err
}

func (d docroot) Mkdir(rel string, perm os.FileMode) error {
	_, err := inDevice(d, rel, func(r *os.Root, in string) (struct{}, error) { return struct{}{}, r.Mkdir(in, perm) })
	return err
}

// Rename renames within one device; from and to must name the same dev<N>.
func (d docroot) Rename(from, to string) error {
	r, in, err := d.device(from)
	if err != nil {
		return err
	}
	defer r.Close()
	dev, _, _ := strings.Cut(from, "/")
	toDev, toIn, _ := strings.Cut(to, "/")
	if toDev != dev || toIn == "" {
		return &os.LinkError{Op: "rename", Old: from, New: to, Err: fs.ErrInvalid}
	}
	defer d.forget(from)
	defer d.forget(to)
	return r.Rename(in, toIn)
}
