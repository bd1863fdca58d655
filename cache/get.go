package cache

import (
	"container/list"
	"context"
	"fmt"
	"log/slog"
	"math"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// Cache is a two-tier response cache. Create it with New and release it with Close.
// It is safe calling Cache methods from concurrently running goroutines.
type Cache struct {
	log          *slog.Logger
	now          func() time.Time
	valid        validity
	memLimit     int64
	memMax       int64
	sliceSize    int64
	staleIfError time.Duration
	swr          time.Duration
	lockTimeout  time.Duration
	disk         *disk // nil without a disk tier
	noSync       bool
	beforeOpen   func(key string) // tests only: runs in open before a disk file is opened

	ctx    context.Context // cancelled by Close; parent of every fill
	cancel context.CancelFunc
	wg     sync.WaitGroup // fills and the janitor

	readers sync.Pool // *Reader, recycled by Reader.Close
	st      counters

	mu       sync.Mutex // guards the fields below
	closed   bool
	entries  map[string]*entry
	groups   map[string]map[string]struct{} // group -> keys of its entries
	tags     map[string]map[string]struct{} // tag -> keys of the entries stored with it
	mem      *simplelru.LRU[string, *entry] // memory tier recency; bytes enforced by reserveLocked
	memBytes int64                          // bodies in memory plus reservations of fills in progress
	diskLRU  list.List                      // of *entry on disk, most recently used first
	diskSize int64                          // bytes of all committed cache files
	flights  map[string]*flight             // fills in progress by key
	uses     *simplelru.LRU[string, int]    // requests per key not yet on disk, for min_uses
}

// entry is one stored object. It lives in c.entries while it has a copy in memory, on disk or both.
type entry struct {
	key, group string
	meta       Meta
	bodyLen    int64 // bytes of the stored body (of the slice, for slices)
	soft       bool  // soft-purged: served as Updating until refreshed

	mem     []byte    // memory copy; nil when not in memory
	memCost int64     // bytes of the memory budget the copy holds
	memUse  time.Time // last use of the memory copy

	file    *diskFile     // disk copy; nil when not on disk
	elem    *list.Element // in c.diskLRU when file != nil
	diskUse time.Time     // last use of the disk copy
}

// New opens a Cache. With a disk tier it creates Config.Disk.Path if needed and rebuilds the index
// from the files there, removing partial or corrupt ones, before it returns. The janitor goroutine it
// starts stops in Close.
func New(cfg Config, log *slog.Logger, opts ...Option) (*Cache, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	o := options{clock: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Cache{
		log:          log,
		now:          o.clock,
		valid:        newValidity(cfg.Valid),
		memLimit:     int64(cfg.Memory.Or(DefaultMemory)),
		memMax:       int64(cfg.MemoryMaxObject.Or(DefaultMemoryMaxObject)),
		sliceSize:    int64(cfg.SliceSize),
		staleIfError: cfg.StaleIfError.D(),
		swr:          cfg.StaleWhileRevalidate.D(),
		lockTimeout:  cfg.LockTimeout.D(),
		noSync:       o.noSync,
		entries:      map[string]*entry{},
		groups:       map[string]map[string]struct{}{},
		tags:         map[string]map[string]struct{}{},
		flights:      map[string]*flight{},
	}
	c.mem, _ = simplelru.NewLRU[string, *entry](math.MaxInt, nil)
	c.uses, _ = simplelru.NewLRU[string, int](1<<16, nil)
	c.readers.New = func() any { return new(Reader) }
	c.ctx, c.cancel = context.WithCancel(context.Background())
	if cfg.Disk.Path != "" {
		d, err := openDisk(cfg.Disk)
		if err != nil {
			c.cancel()
			return nil, err
		}
		c.disk = d
		if err := c.load(); err != nil {
			c.cancel()
			return nil, err
		}
	}
	c.wg.Add(1)
	go c.janitor()
	return c, nil
}

// Close stops the janitor, cancels fills in progress and waits for them. Readers already returned
// stay readable until they are closed. Entries on disk stay for the next New.
func (c *Cache) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.cancel()
	c.wg.Wait()
	return nil
}

// SliceSize returns the slice length GetRange uses, or 0 when slicing is off.
func (c *Cache) SliceSize() int64 { return c.sliceSize }

// freshness of an entry at a moment.
type freshness uint8

const (
	fresh       freshness = iota
	updating              // serve now, refresh in the background
	staleOnFail           // refresh now, serve the entry if the refresh fails
	expired               // refresh now
)

func (c *Cache) freshnessLocked(e *entry, now time.Time, req *Request) freshness {
	if e.soft && !req.NoStale {
		return updating
	}
	if now.Before(e.meta.ExpiresAt) && !e.soft {
		return fresh
	}
	if req.NoStale {
		return expired
	}
	age := now.Sub(e.meta.ExpiresAt)
	if age < c.swr {
		return updating
	}
	if age < c.staleIfError {
		return staleOnFail
	}
	return expired
}

// Get returns a Reader for req.Key and how it was answered. On a miss it starts fill, or attaches to
// the fill already running for the key, and returns once that fill has called Writer.Start (or
// failed): the Reader then streams the body as the fill writes it. The caller must Close the Reader.
//
// Get returns ctx.Err() when ctx ends first, ErrLockTimeout after Config.LockTimeout, ErrClosed
// after Close, and the fill's error when the fill failed before Start and no stale entry may be
// served.
func (c *Cache) Get(ctx context.Context, req Request, fill FillFunc) (*Reader, Status, error) {
	return c.get(ctx, req, fillSpec{fill: fill})
}

// fillSpec is what a flight runs: a whole-object fill, or one slice of a range fill.
type fillSpec struct {
	fill      FillFunc
	rangeFill RangeFillFunc
	slice     int64 // slice index when rangeFill != nil
}

func (c *Cache) get(ctx context.Context, req Request, spec fillSpec) (*Reader, Status, error) {
	if req.Group == "" {
		req.Group = req.Key
	}
	for attempt := 0; ; attempt++ {
		now := c.now()
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return nil, 0, ErrClosed
		}
		e := c.entries[req.Key]
		if attempt > 0 {
			// The stored copy vanished between the index and the open (evicted or purged); whatever
			// the index says now is newer, but one retry is enough: fetch.
			e = nil
		}
		status := Miss
		var prev *Meta
		stale := false
		if req.Bypass {
			// BYPASS whether or not something is stored, as nginx reports proxy_cache_bypass.
			status = Bypass
		} else if e != nil {
			switch c.freshnessLocked(e, now, &req) {
			case fresh:
				h := c.hitLocked(e, now)
				c.mu.Unlock()
				if r := c.open(req.Key, h); r != nil {
					return r, Hit, nil
				}
				continue
			case updating:
				if c.flights[req.Key] == nil {
					m := e.meta
					c.startFlightLocked(req, &m, spec)
				}
				h := c.hitLocked(e, now)
				c.mu.Unlock()
				if r := c.open(req.Key, h); r != nil {
					c.st.updating.Add(1)
					return r, Updating, nil
				}
				continue
			case staleOnFail:
				stale = true
				fallthrough
			case expired:
				m := e.meta
				prev, status = &m, Expired
			}
		}
		if e == nil {
			c.st.mem.misses.Add(1)
			if c.disk != nil {
				c.st.disk.misses.Add(1)
			}
		}
		if c.disk != nil && (e == nil || e.file == nil) {
			n, _ := c.uses.Get(req.Key)
			c.uses.Add(req.Key, n+1)
		}
		fl := c.flights[req.Key]
		if fl == nil {
			fl = c.startFlightLocked(req, prev, spec)
		}
		fl.attach()
		c.mu.Unlock()
		r, st, err := c.wait(ctx, fl, req.Key, status, stale)
		if r != nil || err != nil {
			return r, st, err
		}
		// Revalidated or stale, but the entry vanished meanwhile: look again.
	}
}

// wait blocks until fl has started, then returns a Reader on it. It returns a nil Reader and nil
// error when the answer is a stored entry that turned out to be gone.
func (c *Cache) wait(ctx context.Context, fl *flight, key string, status Status, stale bool) (*Reader, Status, error) {
	var timeout <-chan time.Time
	if c.lockTimeout > 0 {
		t := time.NewTimer(c.lockTimeout)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-fl.started:
	case <-ctx.Done():
		fl.detach()
		return nil, 0, ctx.Err()
	case <-timeout:
		fl.detach()
		return nil, 0, ErrLockTimeout
	}
	fl.mu.Lock()
	err, notModified := fl.err, fl.notModified
	fl.mu.Unlock()
	switch {
	case notModified:
		fl.detach()
		if r := c.serve(key); r != nil {
			c.st.revalidated.Add(1)
			return r, Revalidated, nil
		}
		return nil, 0, nil
	case err != nil && stale:
		fl.detach()
		if r := c.serve(key); r != nil {
			c.st.stale.Add(1)
			return r, Stale, nil
		}
		return nil, 0, err
	case err != nil:
		fl.detach()
		return nil, 0, err
	}
	r := c.newReader()
	r.fl, r.meta, r.size = fl, fl.meta, fl.expect
	return r, status, nil
}

// hit is what a Reader on a stored entry needs, copied under c.mu.
type hit struct {
	meta    Meta
	bodyLen int64
	mem     []byte
	file    diskFile
}

// hitLocked records a use of e and copies what open needs.
func (c *Cache) hitLocked(e *entry, now time.Time) hit {
	if e.elem != nil {
		// A hot memory copy keeps its disk copy from ageing out too.
		c.diskLRU.MoveToFront(e.elem)
		e.diskUse = now
	}
	if e.mem != nil {
		c.mem.Get(e.key)
		e.memUse = now
		c.st.mem.hits.Add(1)
		return hit{meta: e.meta, bodyLen: e.bodyLen, mem: e.mem}
	}
	c.st.mem.misses.Add(1)
	c.st.disk.hits.Add(1)
	return hit{meta: e.meta, bodyLen: e.bodyLen, file: *e.file}
}

// newReader returns a recycled Reader reading to the end of its body.
func (c *Cache) newReader() *Reader {
	r := c.readers.Get().(*Reader)
	r.c, r.end = c, -1
	return r
}

// serve returns a Reader on the stored entry of key, or nil when there is none.
func (c *Cache) serve(key string) *Reader {
	now := c.now()
	c.mu.Lock()
	e := c.entries[key]
	if e == nil {
		c.mu.Unlock()
		return nil
	}
	h := c.hitLocked(e, now)
	c.mu.Unlock()
	return c.open(key, h)
}

// open turns a hit into a Reader; it returns nil when the disk file is gone or was replaced since the
// index was read, after dropping the index entry that points at it.
func (c *Cache) open(key string, h hit) *Reader {
	if h.mem != nil {
		r := c.newReader()
		r.meta, r.mem, r.size = h.meta, h.mem, h.bodyLen
		return r
	}
	if c.beforeOpen != nil {
		c.beforeOpen(key)
	}
	f, err := os.Open(h.file.path)
	if err == nil {
		var fi os.FileInfo
		if fi, err = f.Stat(); err == nil && !os.SameFile(fi, h.file.info) {
			err = os.ErrNotExist
		}
		if err != nil {
			f.Close()
		}
	}
	if err != nil {
		// A purge, eviction or new fill may have replaced or removed the file since hitLocked
		// copied the index: then the index no longer names it, and this is a plain miss. Only a
		// file that went missing while still indexed is worth a warning.
		if c.dropFile(key, h.file.info) {
			c.log.Warn("cache: stored file unreadable; dropping the entry", "key", key, "path", h.file.path, "err", err)
		}
		return nil
	}
	if h.bodyLen <= c.memMax {
		if r := c.promote(key, h, f); r != nil {
			return r
		}
	}
	r := c.newReader()
	r.meta, r.file, r.base, r.size = h.meta, f, h.file.hdrLen, h.bodyLen
	return r
}

// promote copies a small disk entry into the memory tier and returns a memory Reader on it; nil when
// the memory tier has no room or the read fails (the caller then reads the file).
func (c *Cache) promote(key string, h hit, f *os.File) *Reader {
	c.mu.Lock()
	ok := c.reserveLocked(h.bodyLen)
	c.mu.Unlock()
	if !ok {
		return nil
	}
	body := make([]byte, h.bodyLen)
	if _, err := f.ReadAt(body, h.file.hdrLen); err != nil {
		c.mu.Lock()
		c.releaseLocked(h.bodyLen)
		c.mu.Unlock()
		return nil
	}
	now := c.now()
	c.mu.Lock()
	e := c.entries[key]
	if e == nil || e.mem != nil || e.file == nil || !os.SameFile(e.file.info, h.file.info) {
		c.releaseLocked(h.bodyLen)
		c.mu.Unlock()
		return nil
	}
	if !c.memAddLocked(e, body, now) {
		c.mu.Unlock()
		return nil
	}
	c.mu.Unlock()
	f.Close()
	r := c.newReader()
	r.meta, r.mem, r.size = h.meta, body, h.bodyLen
	return r
}
