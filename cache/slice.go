package cache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// Large objects can be cached in slices of Config.SliceSize bytes, each its own entry (in the
// object's group), fetched on demand: the first Range request on a 10GiB object fetches and stores
// only the slices that cover the range.

// sliceState is the part of a Reader returned by GetRange.
type sliceState struct {
	ctx        context.Context
	req        Request
	fill       RangeFillFunc
	start, end int64 // the range, clipped to the object
	cur        *Reader
	curIdx     int64
	size       int64  // object size per the first slice
	etag       string // object ETag per the first slice
}

// sliceKey is the key of slice idx of key; the NUL byte cannot occur in a URI.
func sliceKey(key string, idx int64) string {
	return key + "\x00slice\x00" + strconv.FormatInt(idx, 10)
}

// GetRange returns a Reader on bytes [off, off+n) of the object req.Key, clipped to its size: from a
// fresh whole entry when there is one, otherwise from slices fetched with fill as the Reader reaches
// them. It returns once the slice holding off has started; Reader.Meta describes the whole object
// (Meta.Size is its size, so the caller can answer 416 when off >= Size, in which case the Reader is
// empty). ctx governs the fetch of every slice the Reader needs. Status is that of the first slice.
//
// GetRange needs Config.SliceSize; without it, it returns an error.
func (c *Cache) GetRange(ctx context.Context, req Request, off, n int64, fill RangeFillFunc) (*Reader, Status, error) {
	if c.sliceSize <= 0 {
		return nil, 0, errors.New("cache: GetRange needs slice_size")
	}
	if off < 0 || n < 0 {
		return nil, 0, errors.New("cache: negative range")
	}
	if req.Group == "" {
		req.Group = req.Key
	}
	now := c.now()
	c.mu.Lock()
	if e := c.entries[req.Key]; e != nil && !req.Bypass && c.freshnessLocked(e, now, &req) == fresh {
		h := c.hitLocked(e, now)
		c.mu.Unlock()
		if r := c.open(req.Key, h); r != nil {
			r.off = min(off, r.size)
			r.beg = r.off
			r.end = r.off + min(n, r.size-r.off)
			return r, Hit, nil
		}
	} else {
		c.mu.Unlock()
	}
	idx := off / c.sliceSize
	first, status, err := c.get(ctx, Request{Key: sliceKey(req.Key, idx), Group: req.Group, Bypass: req.Bypass, NoStale: req.NoStale},
		fillSpec{rangeFill: fill, slice: idx})
	if err != nil {
		return nil, 0, err
	}
	meta := first.meta
	if meta.Size < 0 {
		first.Close()
		return nil, 0, fmt.Errorf("%w: slice without object size", ErrSliceMismatch)
	}
	start := min(off, meta.Size)
	end := start + min(n, meta.Size-start)
	first.off = off - idx*c.sliceSize
	r := c.newReader()
	r.meta, r.size, r.off = meta, meta.Size, start
	r.sl = &sliceState{ctx: ctx, req: req, fill: fill, start: start, end: end, cur: first, curIdx: idx,
		size: meta.Size, etag: meta.ETag}
	return r, status, nil
}

// readSlices reads the next bytes of the range, moving to the next slice when one is exhausted.
func (r *Reader) readSlices(p []byte) (int, error) {
	s := r.sl
	c := r.c
	for {
		if r.off >= s.end {
			return 0, io.EOF
		}
		if len(p) == 0 {
			return 0, nil
		}
		idx := r.off / c.sliceSize
		if s.cur == nil || s.curIdx != idx {
			if s.cur != nil {
				s.cur.Close()
				s.cur = nil
			}
			next, _, err := c.get(s.ctx, Request{Key: sliceKey(s.req.Key, idx), Group: s.req.Group, NoStale: s.req.NoStale},
				fillSpec{rangeFill: s.fill, slice: idx})
			if err != nil {
				return 0, err
			}
			if m := next.meta; m.Size != s.size || (m.ETag != s.etag && m.ETag != "" && s.etag != "") {
				next.Close()
				return 0, fmt.Errorf("%w: slice %d of %q", ErrSliceMismatch, idx, s.req.Key)
			}
			next.off = r.off - idx*c.sliceSize
			s.cur, s.curIdx = next, idx
		}
		q := p
		if rem := min(s.end, (idx+1)*c.sliceSize) - r.off; int64(len(q)) > rem {
			q = q[:rem]
		}
		n, err := s.cur.Read(q)
		r.off += int64(n)
		if n > 0 {
			return n, nil
		}
		if err == io.EOF {
			// The slice ended before the range or the slice boundary did.
			return 0, fmt.Errorf("slice %d of %q: %w", idx, s.req.Key, ErrShortFill)
		}
		if err != nil {
			return 0, err
		}
	}
}
