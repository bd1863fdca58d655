package fsutil

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestSyncDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := SyncDir(dir); err != nil {
		t.Errorf("SyncDir(%q) = %v, want nil", dir, err)
	}
	missing := filepath.Join(dir, "missing")
	if err := SyncDir(missing); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("SyncDir(%q) = %v, want fs.ErrNotExist", missing, err)
	}

	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	if err := SyncDirIn(root, "sub"); err != nil {
		t.Errorf("SyncDirIn(root, %q) = %v, want nil", "sub", err)
	}
	if err := SyncDirIn(root, "missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("SyncDirIn(root, %q) = %v, want fs.ErrNotExist", "missing", err)
	}
	if err := SyncDirIn(root, "../x"); err == nil {
		t.Errorf("SyncDirIn(root, %q) = nil, want an error for a path outside the root", "../x")
	}
}
