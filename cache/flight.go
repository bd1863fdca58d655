package cache

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/mogway/mogway/internal/fsutil"
)

// abandonBytes: when every reader of a fill has left, the fill goes on (and is stored) if at most
// this many bytes remain; otherwise it is cancelled with ErrAbandoned rather than fetch a large body
// nobody waits for. A fill of unknown size is cancelled.
const abandonBytes = 8 << 20

// flight is one fill in progress and the readers streaming it.
//
// The body goes to a buffer in memory when it fits the memory tier (memory_max_object, and room in
// the budget), to the temp cache file when it is to be stored on disk, or to both; a body that is
// neither small nor stored goes to an unlinked spool file. Readers read what has been written so
// far from the buffer or the file and wait on cond for more, so memory stays bounded for any size.
type flight struct {
	c       *Cache
	key     string
	group   string
	prev    *Meta
	spec    fillSpec
	diskOK  bool // min_uses reached: store on disk
	ctx     context.Context
	cancel  context.CancelCauseFunc
	started chan struct{} // closed by Start, NotModified or failure

	noStore bool // guarded by c.mu: purged while filling, do not store

	// Guarded by c.mu, for PurgeTag.
	tags       []string // Meta.Tags, once Start ran
	tagsKnown  bool     // Start ran
	purgedTags []string // tags purged before Start ran

	// Owned by the fill goroutine.
	tmp string // temp cache file, "" when none or renamed into place

	mu          sync.Mutex // guards the fields below
	cond        sync.Cond  // signalled when written, done or err change
	isStarted   bool
	meta        Meta
	expect      int64 // body bytes expected, -1 unknown
	store       bool  // the answer may be stored (Config.Valid)
	buf         []byte
	reserved    int64 // memory budget held for buf
	file        *os.File
	hdrLen      int64 // offset of the body in file
	written     int64
	eof         bool // the body is complete (done follows once it is stored)
	done        bool
	err         error
	notModified bool
	readers     int
	refs        int // readers plus the fill goroutine; the file closes at zero
}

// startFlightLocked starts the fill of req.Key.
func (c *Cache) startFlightLocked(req Request, prev *Meta, spec fillSpec) *flight {
	fl := &flight{c: c, key: req.Key, group: req.Group, prev: prev, spec: spec, started: make(chan struct{}), refs: 1, expect: -1}
	fl.cond.L = &fl.mu
	if c.disk != nil {
		if e := c.entries[req.Key]; e != nil && e.file != nil {
			fl.diskOK = true
		} else {
			n, _ := c.uses.Peek(req.Key)
			fl.diskOK = n >= c.disk.minUses
		}
	}
	fl.ctx, fl.cancel = context.WithCancelCause(c.ctx)
	c.flights[req.Key] = fl
	c.wg.Add(1)
	go c.runFlight(fl)
	return fl
}

func (c *Cache) runFlight(fl *flight) {
	defer c.wg.Done()
	w := &Writer{fl: fl}
	err := func() (err error) {
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("cache: fill of %q panicked: %v", fl.key, p)
			}
		}()
		if fl.spec.rangeFill != nil {
			return fl.spec.rangeFill(fl.ctx, fl.spec.slice*c.sliceSize, c.sliceSize, w)
		}
		return fl.spec.fill(fl.ctx, fl.prev, w)
	}()
	c.finish(fl, err)
	fl.cancel(nil)
}

func (c *Cache) finish(fl *flight, err error) {
	fl.mu.Lock()
	started, notModified, written, expect := fl.isStarted, fl.notModified, fl.written, fl.expect
	fl.mu.Unlock()
	if err == nil && !notModified {
		switch {
		case !started:
			err = ErrNotStarted
		case expect >= 0 && written != expect:
			err = fmt.Errorf("%w (%d of %d bytes)", ErrShortFill, written, expect)
		}
	}
	if err != nil && notModified {
		// The entry was already refreshed; the error came after and concerns nobody.
		err = nil
	}
	if err == nil && !notModified {
		// Readers have every byte: let them finish now rather than after the fsync and rename.
		fl.mu.Lock()
		fl.eof = true
		fl.cond.Broadcast()
		fl.mu.Unlock()
	}
	switch {
	case err != nil:
		c.fail(fl, err)
	case notModified:
		// NotModified already took fl out of c.flights.
		fl.finishLocked(nil)
	default:
		c.commit(fl)
	}
	fl.unref()
}

// finishLocked marks the flight done (with err) and wakes everyone.
func (fl *flight) finishLocked(err error) {
	fl.mu.Lock()
	fl.done = true
	if err != nil {
		fl.err = err
		fl.buf = nil
	}
	if !fl.isStarted && !fl.notModified {
		fl.isStarted = true
		close(fl.started)
	}
	fl.cond.Broadcast()
	fl.mu.Unlock()
}

func (c *Cache) fail(fl *flight, err error) {
	c.st.fillErrors.Add(1)
	c.log.Debug("cache: fill failed", "key", fl.key, "err", err)
	c.mu.Lock()
	if c.flights[fl.key] == fl {
		delete(c.flights, fl.key)
	}
	c.mu.Unlock()
	if fl.tmp != "" {
		os.Remove(fl.tmp)
		fl.tmp = ""
	}
	fl.finishLocked(err)
}

// commit stores a complete body: rename of the temp file into place and memory copy, both under
// c.mu so that a concurrent purge either sees the new entry or stops the commit.
func (c *Cache) commit(fl *flight) {
	fl.mu.Lock()
	meta, written, buf, file, reserved := fl.meta, fl.written, fl.buf, fl.file, fl.reserved
	fl.mu.Unlock()
	if meta.Size < 0 && fl.spec.rangeFill == nil {
		meta.Size = written
	}
	var final string
	if fl.tmp != "" {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], uint64(written))
		_, err := file.WriteAt(b[:], offBodyLen)
		if err == nil && !c.noSync {
			err = file.Sync()
		}
		if err == nil {
			final = c.disk.pathFor(fl.key)
			err = os.MkdirAll(filepath.Dir(final), 0o750)
		}
		if err != nil {
			c.log.Warn("cache: cannot store on disk", "key", fl.key, "err", err)
			os.Remove(fl.tmp)
			fl.tmp, final = "", ""
		}
	}
	now := c.now()
	var evicted []*diskFile
	c.mu.Lock()
	current := c.flights[fl.key] == fl && !fl.noStore
	if current {
		delete(c.flights, fl.key)
	}
	storeMem := current && fl.store && buf != nil && int64(len(buf)) == written
	if current && fl.store && (final != "" || storeMem) {
		e := &entry{key: fl.key, group: fl.group, meta: meta, bodyLen: written}
		oldPath := ""
		if old := c.entries[fl.key]; old != nil && old.file != nil {
			oldPath = old.file.path
		}
		c.indexLocked(e)
		if final != "" {
			if err := os.Rename(fl.tmp, final); err != nil {
				c.log.Warn("cache: cannot store on disk", "key", fl.key, "err", err)
			} else if info, err := os.Stat(final); err != nil {
				c.log.Warn("cache: cannot store on disk", "key", fl.key, "err", err)
				fl.tmp = final // removed below
			} else {
				fl.tmp = ""
				c.diskAddLocked(e, &diskFile{path: final, info: info, hdrLen: fl.hdrLen, size: fl.hdrLen + written}, now)
				c.uses.Remove(fl.key)
				evicted = c.evictDiskLocked(evicted)
			}
		}
		if e.file == nil && oldPath != "" {
			// The new answer is not on disk; the old file must not come back at the next start.
			os.Remove(oldPath)
		}
		if storeMem {
			// The buffer's reservation becomes the entry's (or is released if it does not fit).
			c.memAddLocked(e, buf, now)
			reserved = 0
		}
		if e.file == nil && e.mem == nil {
			c.unindexLocked(e)
		} else {
			c.st.fills.Add(1)
		}
	}
	c.mu.Unlock()
	c.removeFiles(evicted)
	if fl.tmp != "" {
		os.Remove(fl.tmp)
		fl.tmp = ""
	} else if final != "" && !c.noSync {
		_ = fsutil.SyncDir(filepath.Dir(final)) // best effort: a lost entry is only a cache miss
	}
	fl.mu.Lock()
	if reserved == 0 {
		fl.reserved = 0 // now the entry's
	}
	fl.mu.Unlock()
	fl.finishLocked(nil)
}

func (fl *flight) attach() {
	fl.mu.Lock()
	fl.readers++
	fl.refs++
	fl.mu.Unlock()
}

// detach drops a reader; the last one to leave a large fill cancels it.
func (fl *flight) detach() {
	fl.mu.Lock()
	fl.readers--
	if fl.readers == 0 && fl.isStarted && !fl.eof && !fl.done && !fl.notModified &&
		(fl.expect < 0 || fl.expect-fl.written > abandonBytes) {
		fl.cancel(ErrAbandoned)
	}
	fl.mu.Unlock()
	fl.unref()
}

// unref drops a reference; the last one closes the file and returns the buffer's memory.
func (fl *flight) unref() {
	fl.mu.Lock()
	fl.refs--
	var f *os.File
	var res int64
	if fl.refs == 0 && fl.done {
		f, fl.file = fl.file, nil
		res, fl.reserved = fl.reserved, 0
		fl.buf = nil
	}
	fl.mu.Unlock()
	if f != nil {
		f.Close()
	}
	if res > 0 {
		fl.c.mu.Lock()
		fl.c.releaseLocked(res)
		fl.c.mu.Unlock()
	}
}

// begun reports whether the fill has called Start or NotModified, one of which it may call once.
func (fl *flight) begun() bool {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	return fl.isStarted || fl.notModified
}

// Writer is what a fill writes the object to. Only the fill goroutine may call its methods; the
// Writer must not be used after the fill returns.
type Writer struct {
	fl *flight
}

// Start declares the metadata and opens the body. It must be called once, before Write. Waiting
// Get calls return once Start has been called.
func (w *Writer) Start(meta Meta) error {
	fl, c := w.fl, w.fl.c
	if fl.begun() {
		return errors.New("cache: Start called twice, or after NotModified")
	}
	if meta.Status == 0 {
		return errors.New("cache: Start with Meta.Status 0")
	}
	now := c.now()
	if meta.StoredAt.IsZero() {
		meta.StoredAt = now
	}
	if meta.ExpiresAt.IsZero() {
		if d, ok := c.valid.forStatus(meta.Status); ok {
			meta.ExpiresAt = meta.StoredAt.Add(d)
		}
	}
	if meta.Size < 0 {
		meta.Size = -1
	}
	store := meta.ExpiresAt.After(meta.StoredAt)
	expect := meta.Size
	if fl.spec.rangeFill != nil {
		if meta.Size < 0 {
			return errors.New("cache: a range fill must declare Meta.Size")
		}
		off := fl.spec.slice * c.sliceSize
		expect = min(max(meta.Size-off, 0), c.sliceSize)
		if expect == 0 {
			store = false // a slice past the end: nothing worth an entry
		}
	}

	var buf []byte
	var reserved int64
	if expect >= 0 && expect <= c.memMax {
		reserved = expect
	} else if expect < 0 {
		reserved = min(c.memMax, 64<<10)
	}
	if reserved > 0 || expect == 0 {
		c.mu.Lock()
		ok := c.reserveLocked(reserved)
		c.mu.Unlock()
		if ok {
			buf = make([]byte, 0, reserved)
		} else {
			reserved = 0
		}
	}

	var file *os.File
	var hdrLen int64
	if store && fl.diskOK && expect < c.disk.maxSize { // a larger body would evict everything, itself included
		f, err := os.CreateTemp(c.disk.root, "tmp-*")
		if err == nil {
			hdr := encodeHeader(&fileHeader{key: fl.key, group: fl.group, meta: meta, bodyLen: max(expect, 0)})
			if _, err = f.Write(hdr); err != nil {
				f.Close()
				os.Remove(f.Name())
			} else {
				file, fl.tmp, hdrLen = f, f.Name(), int64(len(hdr))
			}
		}
		if err != nil {
			c.log.Warn("cache: cannot write to the disk tier", "key", fl.key, "err", err)
		}
	}
	if buf == nil && file == nil {
		f, err := c.spool()
		if err != nil {
			return err
		}
		file, hdrLen = f, 0
	}

	c.mu.Lock()
	fl.tags, fl.tagsKnown = meta.Tags, true
	for _, tag := range fl.purgedTags {
		if slices.Contains(meta.Tags, tag) {
			// A tag purge came while this fill waited for its answer: store nothing.
			fl.noStore = true
			if c.flights[fl.key] == fl {
				delete(c.flights, fl.key)
			}
			break
		}
	}
	c.mu.Unlock()

	fl.mu.Lock()
	fl.meta, fl.expect, fl.store = meta, expect, store
	fl.buf, fl.reserved, fl.file, fl.hdrLen = buf, reserved, file, hdrLen
	fl.isStarted = true
	close(fl.started)
	fl.cond.Broadcast()
	fl.mu.Unlock()
	return nil
}

// spool returns an unlinked temp file for a body that is neither kept in memory nor stored.
func (c *Cache) spool() (*os.File, error) {
	dir := os.TempDir()
	if c.disk != nil {
		dir = c.disk.root
	}
	f, err := os.CreateTemp(dir, "tmp-spool-*")
	if err != nil {
		return nil, fmt.Errorf("cache: spool file: %w", err)
	}
	os.Remove(f.Name())
	return f, nil
}

// Write appends p to the body. It returns ErrTooLong past the declared size, and the cause of the
// fill's cancellation (ErrAbandoned, or context.Canceled after Close) once cancelled.
func (w *Writer) Write(p []byte) (int, error) {
	fl, c := w.fl, w.fl.c
	fl.mu.Lock()
	started, written, expect, buf, file, reserved := fl.isStarted && !fl.notModified, fl.written, fl.expect, fl.buf, fl.file, fl.reserved
	fl.mu.Unlock()
	if !started {
		return 0, ErrNotStarted
	}
	if err := fl.ctx.Err(); err != nil {
		return 0, context.Cause(fl.ctx)
	}
	end := written + int64(len(p))
	if expect >= 0 && end > expect {
		return 0, ErrTooLong
	}
	if buf != nil && int64(cap(buf)) < end {
		grown := false
		if end <= c.memMax {
			newCap := min(max(2*int64(cap(buf)), end), c.memMax)
			// Both buffers exist during the copy, so both are charged until the old one is let go.
			c.mu.Lock()
			grown = c.reserveLocked(newCap)
			c.mu.Unlock()
			if grown {
				nb := make([]byte, len(buf), newCap)
				copy(nb, buf)
				fl.mu.Lock()
				fl.buf, fl.reserved = nb, newCap
				fl.mu.Unlock()
				c.mu.Lock()
				c.releaseLocked(reserved)
				c.mu.Unlock()
				buf, reserved = nb, newCap
			}
		}
		if !grown {
			if err := w.spill(buf, file); err != nil {
				return 0, err
			}
			fl.mu.Lock()
			buf, file = nil, fl.file
			fl.mu.Unlock()
		}
	}
	if file != nil {
		if _, err := file.WriteAt(p, fl.hdrLen+written); err != nil {
			if buf == nil || fl.tmp == "" {
				return 0, fmt.Errorf("cache: writing %q: %w", fl.key, err)
			}
			// The memory buffer holds the whole body: give up the disk copy (disk full?), not the fill.
			c.log.Warn("cache: cannot write to the disk tier", "key", fl.key, "err", err)
			fl.mu.Lock()
			fl.file = nil
			fl.mu.Unlock()
			file.Close()
			os.Remove(fl.tmp)
			fl.tmp = ""
		}
	}
	fl.mu.Lock()
	if buf != nil {
		fl.buf = append(fl.buf, p...)
	}
	fl.written = end
	fl.cond.Broadcast()
	fl.mu.Unlock()
	return len(p), nil
}

// spill moves the body from the memory buffer to a file and returns the buffer's memory.
func (w *Writer) spill(buf []byte, file *os.File) error {
	fl, c := w.fl, w.fl.c
	if file == nil {
		f, err := c.spool()
		if err != nil {
			return err
		}
		if _, err := f.WriteAt(buf, 0); err != nil {
			f.Close()
			return fmt.Errorf("cache: spooling %q: %w", fl.key, err)
		}
		file = f
	}
	fl.mu.Lock()
	res := fl.reserved
	fl.buf, fl.reserved, fl.file = nil, 0, file
	fl.mu.Unlock()
	c.mu.Lock()
	c.releaseLocked(res)
	c.mu.Unlock()
	return nil
}

// NotModified reports that the entry passed to the fill as prev is still current: the entry gets
// meta's times (zero ExpiresAt: now plus the Config.Valid lifetime), and meta's header fields and
// validators when they are set. Waiting Get calls serve the entry as Revalidated. The fill then
// returns nil without writing. It returns ErrNoPrevious when there is no entry (anymore).
func (w *Writer) NotModified(meta Meta) error {
	fl, c := w.fl, w.fl.c
	if fl.begun() {
		return errors.New("cache: NotModified after Start")
	}
	if fl.prev == nil {
		return ErrNoPrevious
	}
	now := c.now()
	c.mu.Lock()
	e := c.entries[fl.key]
	if e == nil || fl.noStore {
		c.mu.Unlock()
		return ErrNoPrevious
	}
	m := e.meta
	m.StoredAt = meta.StoredAt
	if m.StoredAt.IsZero() {
		m.StoredAt = now
	}
	m.ExpiresAt = meta.ExpiresAt
	if m.ExpiresAt.IsZero() {
		d, _ := c.valid.forStatus(m.Status)
		m.ExpiresAt = m.StoredAt.Add(d)
	}
	if len(meta.Header) > 0 {
		m.Header = meta.Header
	}
	if meta.ETag != "" {
		m.ETag = meta.ETag
	}
	if meta.LastModified != "" {
		m.LastModified = meta.LastModified
	}
	e.meta, e.soft = m, false
	var df *diskFile
	if e.file != nil {
		f := *e.file
		df = &f
	}
	if c.flights[fl.key] == fl {
		delete(c.flights, fl.key)
	}
	c.mu.Unlock()
	if df != nil {
		if err := rewriteFixed(df.path, df.info, &m, false); err != nil {
			c.log.Warn("cache: cannot update revalidated entry on disk", "key", fl.key, "err", err)
		}
	}
	fl.mu.Lock()
	fl.notModified = true
	close(fl.started)
	fl.cond.Broadcast()
	fl.mu.Unlock()
	return nil
}
