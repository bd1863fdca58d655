// Package cache is mogway's response cache: a memory tier for small hot objects and a disk tier that
// survives restarts, both bounded in bytes, filled by one streaming upstream fetch per key.
//
// A Get on a missing key starts one fill (a caller-supplied FillFunc) in a goroutine the Cache owns.
// That fill feeds the first caller, every concurrent caller of the same key and the cache file at
// once: readers see each byte as soon as it is written, without waiting for the whole body and
// without polling. A fill that fails, or that writes fewer bytes than it declared, stores nothing,
// and every reader attached to it gets the error from Read, so a caller can abort its connection
// rather than send a short body.
//
// Entries belong to a group (the URI path of the key) and may carry tags (Meta.Tags); Purge,
// PurgePrefix and PurgeAll work on groups, PurgeTag on tags, all from the in-memory index, and a soft
// purge marks entries stale instead of removing them.
// *Cache satisfies the Target interface of package purge.
//
// The package knows nothing of HTTP: metadata (status, header fields, validators) is opaque to it
// apart from the freshness it computes from Config.Valid and an injected clock.
//
// Configuration, inside the gateway section:
//
//	cache:
//	  memory: 256MiB
//	  memory_max_object: 1MiB
//	  disk:
//	    path: /var/cache/mogway
//	    max_size: 10GiB
//	    inactive: 10m
//	    levels: "1:2"
//	    min_uses: 1
//	    max_entries: 1000000
//	  slice_size: 1MiB
//	  valid: {"200": 10m, "404": 1m}
//	  stale_if_error: 1h
//	  stale_while_revalidate: 30s
//
// All Cache methods may be called from concurrently running goroutines.
package cache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// HeaderField is one stored header field, kept in the order the fill gave it.
type HeaderField struct {
	Name, Value string
}

// Meta is what the cache stores with a body. The fill supplies it through Writer.Start; Get gives it
// back through Reader.Meta. Callers must not modify the Header slice of a Meta they got back.
type Meta struct {
	// Status is the upstream status code; it selects the Config.Valid lifetime.
	Status int
	// Header holds the header fields to replay.
	Header []HeaderField
	// Size is the length of the whole body, or -1 when unknown until the fill ends. Zero means an
	// empty body. For slices it is the size of the whole object, not of the slice.
	Size int64
	// StoredAt is when the body was fetched; zero in Start means now.
	StoredAt time.Time
	// ExpiresAt ends freshness; zero in Start means StoredAt plus the Config.Valid lifetime of
	// Status. An ExpiresAt not after StoredAt means "do not store".
	ExpiresAt time.Time
	// ETag and LastModified are the validators a revalidating fill sends upstream.
	ETag, LastModified string
	// Tags name the entry for PurgeTag (surrogate keys); nil means none. A revalidation
	// (Writer.NotModified) keeps the tags the entry was stored with.
	Tags []string
}

// Status says how Get answered.
type Status uint8

// Statuses, named as in nginx's $upstream_cache_status.
const (
	// Miss: no entry; the Reader streams the fill.
	Miss Status = iota + 1
	// Hit: a fresh entry.
	Hit
	// Expired: the entry had expired; the Reader streams its replacement.
	Expired
	// Stale: the refresh failed and the expired entry was served within Config.StaleIfError.
	Stale
	// Updating: the expired (or soft-purged) entry was served while a background fill refreshes it.
	Updating
	// Revalidated: the fill confirmed the expired entry with Writer.NotModified.
	Revalidated
	// Bypass: Request.Bypass skipped the entry, if any; the Reader streams a fill that replaces it.
	Bypass
)

var statusNames = [...]string{"", "MISS", "HIT", "EXPIRED", "STALE", "UPDATING", "REVALIDATED", "BYPASS"}

// String returns the nginx spelling: "HIT", "MISS", ...
func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return "UNKNOWN"
}

// Request names what Get looks up.
type Request struct {
	// Key is the full cache key, e.g. path plus query string.
	Key string
	// Group is what Purge removes together: the URI path Key derives from. Empty means Key.
	Group string
	// Bypass skips a stored entry and fetches a new one, which replaces it (nginx proxy_cache_bypass).
	Bypass bool
	// NoStale forbids serving an expired entry (no Stale, no Updating).
	NoStale bool
}

// FillFunc fetches the object for a Get that missed. It runs in a goroutine the Cache owns, with a
// context cancelled by Close (or when every reader left a large fill, see Reader.Close); it must
// return soon after that context is done, since Close waits for it.
//
// prev is nil for a plain miss. When an expired entry exists, prev holds its metadata and the fill
// may send a conditional request; on "not modified" it calls w.NotModified and returns nil. Otherwise
// it calls w.Start once, then w.Write with the body. Returning nil with all declared bytes written
// stores the entry; returning an error (or too few bytes) stores nothing and fails every reader.
// For Config.StaleIfError to apply to upstream 5xx answers, return an error instead of starting one.
type FillFunc func(ctx context.Context, prev *Meta, w *Writer) error

// RangeFillFunc fetches bytes [off, off+n) of an object for GetRange. It calls w.Start with the
// metadata of the whole object (Meta.Size is the whole size, which must be known), then writes
// exactly the bytes of the range that exist: min(n, Size-off) of them, none when off >= Size.
type RangeFillFunc func(ctx context.Context, off, n int64, w *Writer) error

// Errors. Callers compare with errors.Is.
var (
	// ErrClosed is returned by Get after Close.
	ErrClosed = errors.New("cache: closed")
	// ErrShortFill is what readers get when a fill ended before writing its declared size.
	// It wraps io.ErrUnexpectedEOF.
	ErrShortFill = fmt.Errorf("cache: fill ended before the declared size: %w", io.ErrUnexpectedEOF)
	// ErrTooLong is returned by Writer.Write past the declared size.
	ErrTooLong = errors.New("cache: fill wrote more than the declared size")
	// ErrNotStarted is returned by Writer.Write before Writer.Start, and to readers of a fill that
	// returned nil without starting.
	ErrNotStarted = errors.New("cache: fill did not call Start")
	// ErrAbandoned is returned to a fill whose readers all left (see Reader.Close).
	ErrAbandoned = errors.New("cache: fill abandoned by all readers")
	// ErrLockTimeout is returned by Get when a fill in progress did not start within Config.LockTimeout.
	ErrLockTimeout = errors.New("cache: timed out waiting for a fill in progress")
	// ErrNoPrevious is returned by Writer.NotModified when there is no entry to revalidate.
	ErrNoPrevious = errors.New("cache: not modified, but no stored entry to revalidate")
	// ErrSliceMismatch is returned by a GetRange Reader whose slices disagree on the object's size
	// or ETag (the object changed between slice fetches); the group should be purged.
	ErrSliceMismatch = errors.New("cache: slices of one object disagree on size or ETag")
)

// Option adjusts New.
type Option func(*options)

type options struct {
	clock  func() time.Time
	noSync bool // tests only: skip fsync when storing thousands of files
}

// WithClock makes the Cache read the time from clock instead of time.Now (for tests).
func WithClock(clock func() time.Time) Option {
	return func(o *options) { o.clock = clock }
}
