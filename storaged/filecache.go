package storaged

import (
	"strings"
	"sync"
	"syscall"
	"time"
)

// fileCacheMax bounds the descriptors a fileCache keeps open.
const fileCacheMax = 1024

// fileCacheInactive is how long a cached file stays open without a GET or HEAD: a file deleted
// behind the node's back (not through DELETE, which forgets it at once) frees its disk space less
// than twice this long after its last read (the sweep runs once per fileCacheInactive).
const fileCacheInactive = 10 * time.Second

// fileCache keeps the descriptors of small files (up to smallFileSize) open between GETs, as nginx's
// open_file_cache does, so a hit costs no open, fstat or close.
//
// An entry is trusted for valid after the path was last found to name it (as open_file_cache_valid
// trusts nginx's): a GET within that time serves the descriptor with the size and dates of that
// check. A HEAD, and the first GET after that time, stats the path through the device root (see
// docroot.openGet) and keeps the descriptor only when the path still names the same file (st_dev,
// st_ino). A file replaced by a rename, deleted or turned into a directory or a symlink leading out
// of the device behind the node's back is therefore served to GET from the old descriptor for at
// most valid, and never to HEAD, which the tracker's size checks use; with valid 0 every hit
// checks, and such a change is seen by the next request. DELETE, PUT and renames through
// the docroot forget the entry at once (see docroot.forget), whatever valid is, and an entry is
// checked again once a device root was replaced (rootCache.replaced) since its last check.
//
// Entries are reference counted: the cache holds one reference while the entry is in files, and
// each request reading the descriptor holds one, so an entry evicted or forgotten while a request
// reads it is closed when that request releases it. At most fileCacheMax entries are kept (the
// least recently used is evicted), and an entry unused for fileCacheInactive is closed by a sweep.
//
// A fileCache is safe for concurrent use.
type fileCache struct {
	max      int
	inactive time.Duration
	valid    time.Duration // how long an entry is served without a stat of its path
	now      func() time.Time

	mu     sync.Mutex           // guards everything below and every openFile's refs, used, prev, next
	files  map[string]*openFile // by path relative to the docroot
	lru    openFileList         // most recently used at the front
	sweep  *time.Timer          // runs sweepInactive while files is not empty; nil before the first
	armed  bool                 // sweep is scheduled
	closed bool                 // Close was called: nothing new is kept
}

// openFile is one cached descriptor.
type openFile struct {
	rel      string
	fd       int
	dev, ino uint64
	refs     int       // see fileCache
	used     int64     // when (UnixNano) it was last put or hit
	checked  int64     // when (UnixNano) its path was last found to name it
	roots    uint64    // rootCache.replaced as of checked
	head     *fileHead // its status as of checked; replaced, never changed
	cached   bool      // in files
	prev     *openFile
	next     *openFile
}

func newFileCache(max int, inactive, valid time.Duration) *fileCache {
	return &fileCache{max: max, inactive: inactive, valid: valid, now: time.Now, files: map[string]*openFile{}}
}

// acquire returns the entry of rel with a reference for the caller, or nil. head is the entry's
// status while it is trusted, and nil when the path must be checked (see checked) before the
// descriptor is served. roots is rootCache.replaced now.
func (c *fileCache) acquire(rel string, roots uint64) (e *openFile, head *fileHead) {
	now := c.now().UnixNano()
	c.mu.Lock()
	e = c.files[rel]
	if e != nil {
		e.refs++
		e.used = now
		c.lru.moveToFront(e)
		if now-e.checked < int64(c.valid) && e.roots == roots {
			head = e.head
		}
	}
	c.mu.Unlock()
	return e, head
}

// checked records that the path of e still names it, with status fm, and returns its head: the
// one it had when fm describes the file as before, a new one otherwise. roots is
// rootCache.replaced as read before the stat.
func (c *fileCache) checked(e *openFile, fm fileMeta, roots uint64) *fileHead {
	now := c.now().UnixNano()
	c.mu.Lock()
	head := e.head
	if !head.meta.same(fm) {
		c.mu.Unlock()
		head = newFileHead(fm)
		c.mu.Lock()
		e.head = head
	}
	e.checked, e.roots = now, roots
	c.mu.Unlock()
	return head
}

// release drops a reference taken by acquire; the last one closes the descriptor.
func (c *fileCache) release(e *openFile) {
	c.mu.Lock()
	e.refs--
	last := e.refs == 0
	c.mu.Unlock()
	if last {
		syscall.Close(e.fd)
	}
}

// drop takes e out of the cache if it is still there (its path no longer names its file).
func (c *fileCache) drop(e *openFile) {
	c.mu.Lock()
	last := c.removeLocked(e)
	c.mu.Unlock()
	if last {
		syscall.Close(e.fd)
	}
}

// forget takes the entry of rel, if any, out of the cache.
func (c *fileCache) forget(rel string) {
	c.mu.Lock()
	e := c.files[rel]
	last := e != nil && c.removeLocked(e)
	c.mu.Unlock()
	if last {
		syscall.Close(e.fd)
	}
}

// removeLocked takes e out of files and drops the cache's reference; it reports whether that was
// the last one (the caller then closes e.fd after unlocking).
func (c *fileCache) removeLocked(e *openFile) bool {
	if !e.cached {
		return false
	}
	e.cached = false
	delete(c.files, e.rel)
	c.lru.remove(e)
	e.refs--
	return e.refs == 0
}

// put keeps fd, the open file rel with status head (just taken from fd), and reports whether it
// did; when it did not (rel is cached already, or the cache is closed), the caller still owns fd.
// roots is rootCache.replaced as read before the open.
func (c *fileCache) put(rel string, fd int, head *fileHead, roots uint64) bool {
	now := c.now().UnixNano()
	var evicted []*openFile
	c.mu.Lock()
	if c.closed || c.files[rel] != nil {
		c.mu.Unlock()
		return false
	}
	rel = strings.Clone(rel) // the caller's may alias a request buffer
	e := &openFile{rel: rel, fd: fd, dev: head.meta.dev, ino: head.meta.ino, refs: 1, used: now, cached: true,
		checked: now, roots: roots, head: head}
	c.files[rel] = e
	c.lru.pushFront(e)
	for len(c.files) > c.max {
		v := c.lru.back
		if c.removeLocked(v) {
			evicted = append(evicted, v)
		}
	}
	if !c.armed {
		c.armed = true
		if c.sweep == nil {
			c.sweep = time.AfterFunc(c.inactive, c.sweepInactive)
		} else {
			c.sweep.Reset(c.inactive)
		}
	}
	c.mu.Unlock()
	for _, v := range evicted {
		syscall.Close(v.fd)
	}
	return true
}

// sweepInactive closes the entries unused for c.inactive and runs again while any is left.
func (c *fileCache) sweepInactive() {
	old := c.now().Add(-c.inactive).UnixNano()
	var closing []*openFile
	c.mu.Lock()
	for v := c.lru.back; v != nil && v.used <= old; v = c.lru.back {
		if c.removeLocked(v) {
			closing = append(closing, v)
		}
	}
	c.armed = len(c.files) > 0 && !c.closed
	if c.armed {
		c.sweep.Reset(c.inactive)
	}
	c.mu.Unlock()
	for _, v := range closing {
		syscall.Close(v.fd)
	}
}

// Close closes every cached descriptor no request is reading (the others close on release) and
// keeps nothing from then on.
func (c *fileCache) Close() {
	var closing []*openFile
	c.mu.Lock()
	c.closed = true
	for _, v := range c.files {
		if c.removeLocked(v) {
			closing = append(closing, v)
		}
	}
	if c.sweep != nil {
		c.sweep.Stop()
	}
	c.armed = false
	c.mu.Unlock()
	for _, v := range closing {
		syscall.Close(v.fd)
	}
}

// len returns the number of cached entries.
func (c *fileCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.files)
}

// openFileList is a doubly linked list through the entries' own prev and next fields.
type openFileList struct {
	front, back *openFile
}

func (l *openFileList) pushFront(e *openFile) {
	e.prev, e.next = nil, l.front
	if l.front != nil {
		l.front.prev = e
	} else {
		l.back = e
	}
	l.front = e
}

func (l *openFileList) remove(e *openFile) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		l.front = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		l.back = e.prev
	}
	e.prev, e.next = nil, nil
}

func (l *openFileList) moveToFront(e *openFile) {
	if l.front == e {
		return
	}
	l.remove(e)
	l.pushFront(e)
}
