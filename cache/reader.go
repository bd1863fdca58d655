package cache

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// Reader streams one answer: a stored entry (memory or disk), a fill in progress, or, from GetRange,
// a range assembled from slices. A Reader is for one goroutine; Close must be called exactly once,
// and the Reader must not be used after it.
//
// Read on a fill in progress returns the bytes written so far and blocks for more; when the fill
// fails, Read returns its error (ErrShortFill when it ended early), never a silent io.EOF.
type Reader struct {
	c    *Cache
	meta Meta
	size int64 // body bytes of the answer; -1 while a fill of unknown size runs
	off  int64 // next byte to read, relative to the body (to the object for slices)
	end  int64 // end of the readable range; -1 means size
	beg  int64 // start of the readable range, for Size

	mem  []byte
	file *os.File
	base int64 // offset of the body in file
	fl   *flight
	sl   *sliceState
}

// Stored reports whether the Reader reads a stored answer, from memory or disk, so that no read
// waits for a fill (or a slice's fetch) still in progress.
func (r *Reader) Stored() bool { return r.fl == nil && r.sl == nil }

// Meta returns the stored metadata. Its Header slice is shared: do not modify it.
func (r *Reader) Meta() Meta { return r.meta }

// Size returns the number of bytes the Reader yields from its start, or -1 when it is not known yet
// (a fill of unknown length in progress).
func (r *Reader) Size() int64 {
	if r.sl != nil {
		return r.sl.end - r.sl.start
	}
	if r.end >= 0 {
		return r.end - r.beg
	}
	if r.fl != nil {
		r.fl.mu.Lock()
		defer r.fl.mu.Unlock()
		if (r.fl.done || r.fl.eof) && r.fl.err == nil {
			return r.fl.written
		}
		return r.fl.expect
	}
	return r.size
}

// limit returns the end of the readable range, or -1 when unknown.
func (r *Reader) limit() int64 {
	if r.end >= 0 {
		return r.end
	}
	return r.size
}

// Read implements io.Reader.
func (r *Reader) Read(p []byte) (int, error) {
	if r.sl != nil {
		return r.readSlices(p)
	}
	n, err := r.readBody(p, r.off)
	r.off += int64(n)
	return n, err
}

// readBody reads at off from a fill in progress or a stored entry.
func (r *Reader) readBody(p []byte, off int64) (int, error) {
	if r.fl != nil {
		return r.readFlight(p, off)
	}
	return r.readStored(p, off)
}

// ReadAt implements io.ReaderAt for stored entries and fills in progress (it blocks until the bytes
// are written). It is not available on GetRange Readers.
func (r *Reader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("cache: negative offset")
	}
	if r.sl != nil {
		return 0, errors.New("cache: ReadAt on a range Reader")
	}
	var n int
	for n < len(p) {
		k, err := r.readBody(p[n:], off+int64(n))
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// Seek implements io.Seeker for stored entries and fills of known size.
func (r *Reader) Seek(offset int64, whence int) (int64, error) {
	if r.sl != nil {
		return 0, errors.New("cache: Seek on a range Reader")
	}
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = r.off + offset
	case io.SeekEnd:
		lim := r.limit()
		if lim < 0 {
			return 0, errors.New("cache: SeekEnd while the size is unknown")
		}
		abs = lim + offset
	default:
		return 0, errors.New("cache: invalid whence")
	}
	if abs < 0 {
		return 0, errors.New("cache: negative position")
	}
	r.off = abs
	return abs, nil
}

// WriteTo implements io.WriterTo. A stored body is written without a copy through a buffer: the
// memory tier's bytes in one Write, a disk file as an *io.LimitedReader over the *os.File handed to
// w's ReadFrom (a *net.TCPConn sends it with sendfile(2)); w's buffered bytes are flushed first when
// it has a Flush method, as a bufio.Writer hands ReadFrom on only when empty. A stored file that ends
// before the body does is io.ErrUnexpectedEOF. Fills in progress and range Readers copy through Read.
func (r *Reader) WriteTo(w io.Writer) (int64, error) {
	if r.sl != nil || r.fl != nil {
		return io.Copy(w, struct{ io.Reader }{r})
	}
	lim := r.limit()
	if r.off >= lim {
		return 0, nil
	}
	if r.mem != nil {
		n, err := w.Write(r.mem[r.off:lim])
		r.off += int64(n)
		return int64(n), err
	}
	if fl, ok := w.(interface{ Flush() error }); ok {
		if err := fl.Flush(); err != nil {
			return 0, err
		}
	}
	if _, err := r.file.Seek(r.base+r.off, io.SeekStart); err != nil {
		return 0, err
	}
	lr := io.LimitedReader{R: r.file, N: lim - r.off}
	n, err := io.Copy(w, &lr)
	r.off += n
	if err == nil && lr.N > 0 {
		err = fmt.Errorf("cache: stored file %s cut short: %w", r.file.Name(), io.ErrUnexpectedEOF)
	}
	return n, err
}

func (r *Reader) readStored(p []byte, off int64) (int, error) {
	lim := r.limit()
	if off >= lim {
		return 0, io.EOF
	}
	if int64(len(p)) > lim-off {
		p = p[:lim-off]
	}
	if r.mem != nil {
		return copy(p, r.mem[off:]), nil
	}
	n, err := r.file.ReadAt(p, r.base+off)
	if n == len(p) {
		return n, nil
	}
	if err == io.EOF || err == nil {
		err = fmt.Errorf("cache: stored file %s cut short: %w", r.file.Name(), io.ErrUnexpectedEOF)
	}
	return n, err
}

func (r *Reader) readFlight(p []byte, off int64) (int, error) {
	fl := r.fl
	if r.end >= 0 {
		if off >= r.end {
			return 0, io.EOF
		}
		if int64(len(p)) > r.end-off {
			p = p[:r.end-off]
		}
	}
	if len(p) == 0 {
		return 0, nil
	}
	fl.mu.Lock()
	for {
		if fl.err != nil {
			err := fl.err
			fl.mu.Unlock()
			return 0, err
		}
		if off < fl.written {
			break
		}
		if fl.done || fl.eof {
			fl.mu.Unlock()
			return 0, io.EOF
		}
		fl.cond.Wait()
	}
	avail := fl.written - off
	if int64(len(p)) > avail {
		p = p[:avail]
	}
	if fl.buf != nil {
		n := copy(p, fl.buf[off:])
		fl.mu.Unlock()
		return n, nil
	}
	f, base := fl.file, fl.hdrLen
	fl.mu.Unlock()
	n, err := f.ReadAt(p, base+off)
	if n == len(p) {
		return n, nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return n, fmt.Errorf("cache: reading fill of %q: %w", fl.key, err)
}

// Close releases the Reader. When the last reader of a fill in progress leaves and more than 8MiB of
// the body remain to be fetched (or its length is unknown), the fill is cancelled with ErrAbandoned;
// otherwise it completes and is stored.
func (r *Reader) Close() error {
	c := r.c
	if c == nil {
		return errors.New("cache: Reader closed twice")
	}
	var err error
	if r.file != nil {
		err = r.file.Close()
	}
	if r.fl != nil {
		r.fl.detach()
	}
	if r.sl != nil && r.sl.cur != nil {
		r.sl.cur.Close()
	}
	*r = Reader{}
	c.readers.Put(r)
	return err
}
