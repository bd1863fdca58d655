package cache

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// The disk tier: one file per entry at a path derived from the MD5 of its key, nginx style
// (levels "1:2" puts key hash ...b7f54b2df7773722d382f4809d65029c at c/29/<hash>). Each file is a
// header (see format.go) followed by the body. Fills write a temp file "tmp-*" in the root, fsync
// it and rename it into place; the index in memory is rebuilt from the headers at start.

// disk holds the immutable settings of the disk tier.
type disk struct {
	root     string
	levels   []int
	maxSize  int64
	inactive time.Duration
	minUses  int
	maxFiles int
}

// diskFile is the disk copy of an entry.
type diskFile struct {
	path   string
	info   os.FileInfo // identifies the file: a reader checks it still has this one open
	hdrLen int64
	size   int64 // header plus body
}

func openDisk(cfg DiskConfig) (*disk, error) {
	levels, err := parseLevels(cfg.Levels)
	if err != nil {
		return nil, fmt.Errorf("cache: disk.levels: %w", err)
	}
	root, err := filepath.Abs(cfg.Path)
	if err != nil {
		return nil, fmt.Errorf("cache: disk.path: %w", err)
	}
	if err := os.MkdirAll(root, 0o750); err != nil {
		return nil, fmt.Errorf("cache: disk.path: %w", err)
	}
	// Probe that the directory takes files, as the fills will need it to.
	f, err := os.CreateTemp(root, "tmp-probe-*")
	if err != nil {
		return nil, fmt.Errorf("cache: disk.path %s is not writable: %w", root, err)
	}
	f.Close()
	os.Remove(f.Name())
	d := &disk{
		root:     root,
		levels:   levels,
		maxSize:  int64(cfg.MaxSize.Or(DefaultDiskMaxSize)),
		inactive: cfg.Inactive.Or(DefaultInactive),
		minUses:  cfg.MinUses,
	}
	d.maxFiles = cfg.MaxEntries
	if d.maxFiles == 0 {
		d.maxFiles = DefaultMaxEntries
	}
	if d.minUses == 0 {
		d.minUses = DefaultMinUses
	}
	return d, nil
}

// pathFor returns the file of key.
func (d *disk) pathFor(key string) string {
	sum := md5.Sum([]byte(key))
	h := hex.EncodeToString(sum[:])
	parts := make([]string, 0, len(d.levels)+2)
	parts = append(parts, d.root)
	end := len(h)
	for _, n := range d.levels {
		parts = append(parts, h[end-n:end])
		end -= n
	}
	parts = append(parts, h)
	return filepath.Join(parts...)
}

// diskAddLocked records f as e's disk copy.
func (c *Cache) diskAddLocked(e *entry, f *diskFile, now time.Time) {
	e.file, e.diskUse = f, now
	e.elem = c.diskLRU.PushFront(e)
	c.diskSize += f.size
	c.st.disk.bytes.Store(c.diskSize)
	c.st.disk.entries.Add(1)
}

// diskForgetLocked removes e's disk copy from the index and returns it; the caller removes it with
// removeFiles once c.mu is released. e itself leaves the index when it has no memory copy either.
func (c *Cache) diskForgetLocked(e *entry) *diskFile {
	if e.file == nil {
		return nil
	}
	f := e.file
	c.diskLRU.Remove(e.elem)
	c.diskSize -= e.file.size
	c.st.disk.bytes.Store(c.diskSize)
	c.st.disk.entries.Add(-1)
	e.file, e.elem = nil, nil
	if e.mem == nil {
		c.unindexLocked(e)
	}
	return f
}

// evictDiskLocked drops the least recently used disk copies until the tier fits max_size and
// max_entries, and returns the files to remove.
func (c *Cache) evictDiskLocked(files []*diskFile) []*diskFile {
	for c.diskSize > c.disk.maxSize || c.diskLRU.Len() > c.disk.maxFiles {
		el := c.diskLRU.Back()
		if el == nil {
			break
		}
		files = append(files, c.diskForgetLocked(el.Value.(*entry)))
		c.st.disk.evictions.Add(1)
	}
	return files
}

// dropFile forgets the disk copy of key when it is still the file identified by info (a reader found
// it missing or replaced). It reports whether it did: false means the index had already moved on.
func (c *Cache) dropFile(key string, info os.FileInfo) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.entries[key]; e != nil && e.file != nil && os.SameFile(e.file.info, info) {
		c.diskForgetLocked(e)
		return true
	}
	return false
}

// removeFiles unlinks disk copies the index has forgotten (nil ones are skipped). It must be called
// without c.mu held; it takes c.mu for each file, because a fill of the same key may have renamed
// its new file onto the path since the index forgot the old one (commit renames under c.mu): the
// path is unlinked only while it still holds the forgotten file, else the purge that dropped the
// old copy would delete the new one under its index entry.
func (c *Cache) removeFiles(files []*diskFile) {
	for _, f := range files {
		if f == nil {
			continue
		}
		c.mu.Lock()
		if fi, err := os.Stat(f.path); err == nil && os.SameFile(fi, f.info) {
			os.Remove(f.path)
		}
		c.mu.Unlock()
	}
}

// sweep enforces inactive on both tiers and max_size on disk.
func (c *Cache) sweep() {
	inactive := DefaultInactive
	if c.disk != nil {
		inactive = c.disk.inactive
	}
	cutoff := c.now().Add(-inactive)
	var files []*diskFile
	c.mu.Lock()
	c.sweepMemLocked(cutoff)
	if c.disk != nil {
		for el := c.diskLRU.Back(); el != nil; el = c.diskLRU.Back() {
			e := el.Value.(*entry)
			if !e.diskUse.Before(cutoff) {
				break
			}
			files = append(files, c.diskForgetLocked(e))
			c.st.disk.evictions.Add(1)
		}
		files = c.evictDiskLocked(files)
	}
	c.mu.Unlock()
	c.removeFiles(files)
}

// janitor runs sweep periodically until Close.
func (c *Cache) janitor() {
	defer c.wg.Done()
	every := DefaultInactive
	if c.disk != nil {
		every = c.disk.inactive
	}
	every = min(max(every/4, time.Second), time.Minute)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
			func() {
				defer func() {
					if p := recover(); p != nil {
						c.log.Error("cache: janitor panic", "panic", p)
					}
				}()
				c.sweep()
			}()
		}
	}
}

// loadWorkers read cache file headers in parallel at start: a cold disk serves several reads at once.
const loadWorkers = 8

// load rebuilds the index from the files under the root. Temp files of interrupted fills and files
// that are partial, corrupt or misplaced are removed.
func (c *Cache) load() error {
	d := c.disk
	now := c.now()
	var (
		mu  sync.Mutex // guards all and bad
		all []*entry
		bad int
		wg  sync.WaitGroup
	)
	paths := make(chan string, 64)
	for i := 0; i < loadWorkers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range paths {
				e, err := readEntryFile(p)
				if err == nil && d.pathFor(e.key) != p {
					err = fmt.Errorf("file is not at the path of its key %q", e.key)
				}
				if err != nil {
					c.log.Warn("cache: removing unusable cache file", "path", p, "err", err)
					os.Remove(p)
				}
				mu.Lock()
				if err != nil {
					bad++
				} else {
					all = append(all, e)
				}
				mu.Unlock()
			}
		}()
	}
	err := filepath.WalkDir(d.root, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if de.IsDir() {
			return nil
		}
		if strings.HasPrefix(de.Name(), "tmp-") {
			os.Remove(p)
			return nil
		}
		paths <- p
		return nil
	})
	close(paths)
	wg.Wait()
	if err != nil {
		return fmt.Errorf("cache: loading %s: %w", d.root, err)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].file.info.ModTime().Before(all[j].file.info.ModTime()) })
	c.mu.Lock()
	for _, e := range all {
		file := e.file
		e.file = nil
		c.indexLocked(e)
		c.diskAddLocked(e, file, now)
	}
	evicted := c.evictDiskLocked(nil)
	c.mu.Unlock()
	c.removeFiles(evicted)
	c.log.Info("cache: disk index loaded", "path", d.root, "entries", len(all), "bytes", c.st.disk.bytes.Load(), "removed", bad)
	return nil
}
