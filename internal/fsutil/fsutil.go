// Package fsutil holds the file-system steps of a durable write that several packages share. It
// imports no mogway package.
package fsutil

import "os"

// SyncDir fsyncs the directory dir, so that a file created, renamed or removed in it survives a
// crash. It returns the first error of opening, syncing and closing dir.
func SyncDir(dir string) error {
	return syncClose(os.Open(dir))
}

// Opener opens a file by name; *os.Root is one, confining the names to its directory.
type Opener interface {
	Open(name string) (*os.File, error)
}

// SyncDirIn is SyncDir for the directory dir opened through fsys.
func SyncDirIn(fsys Opener, dir string) error {
	return syncClose(fsys.Open(dir))
}

func syncClose(d *os.File, err error) error {
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
