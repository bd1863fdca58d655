package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// ErrNoPaths is returned by Fetch when the key exists but the tracker knows no usable copy
// (OK paths=0).
var ErrNoPaths = errors.New("client: no usable copy of the key")

// Upload stores size bytes read from r under key: create_open, an HTTP PUT of the body to the first
// destination (with Content-Length), and create_close with the size. When a PUT fails before r was
// read, or r is an io.Seeker that can be rewound, the next destination is tried. It returns the new
// fid. size must be the exact length of r's content.
func (p *Pool) Upload(ctx context.Context, domain, key, class string, r io.Reader, size int64) (fid int64, err error) {
	if size < 0 {
		return 0, fmt.Errorf("client: upload %q: negative size %d", key, size)
	}
	open, err := p.CreateOpen(ctx, domain, key, class)
	if err != nil {
		return 0, err
	}
	var start int64
	seeker, canSeek := r.(io.Seeker)
	if canSeek {
		if start, err = seeker.Seek(0, io.SeekCurrent); err != nil {
			canSeek = false
		}
	}
	var errs []error
	for i, d := range open.Dests {
		if i > 0 && canSeek {
			if _, err := seeker.Seek(start, io.SeekStart); err != nil {
				errs = append(errs, err)
				break
			}
		}
		cr := &countingReader{r: r}
		err := p.put(ctx, d.Path, cr, size)
		if err == nil {
			err = p.CreateClose(ctx, CloseRequest{
				Domain: domain, Key: key, Class: class, Fid: open.Fid, DevID: d.DevID, Path: d.Path, Size: size,
			})
			if err != nil {
				return 0, err
			}
			return open.Fid, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil || (cr.n > 0 && !canSeek) {
			break
		}
	}
	return 0, fmt.Errorf("client: upload %q (fid %d): %w", key, open.Fid, errors.Join(errs...))
}

func (p *Pool) put(ctx context.Context, url string, body io.Reader, size int64) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, url, body)
	if err != nil {
		return err
	}
	req.ContentLength = size
	if size == 0 {
		req.Body = http.NoBody
	}
	resp, err := p.http.Do(req)
	if err != nil {
		return fmt.Errorf("PUT %s: %w", url, err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("PUT %s: %s", url, resp.Status)
	}
	return nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	return n, err
}

// Fetch writes the content of key to w and returns the number of bytes written. It asks the tracker
// for paths without noverify=1 (which mogfetch sends), so the tracker checks the first path with a
// HEAD before answering. It tries the paths in order, moving on only while nothing has been written
// to w; a copy that breaks off after the first byte is an error, never a short success. A response
// shorter than its Content-Length is an error too.
func (p *Pool) Fetch(ctx context.Context, domain, key string, w io.Writer) (int64, error) {
	// The length recorded by create_close is the only trustworthy size: a copy damaged on disk
	// answers with its own, shorter Content-Length, which alone would look like a complete body.
	info, err := p.FileInfo(ctx, domain, key)
	if err != nil {
		return 0, err
	}
	paths, err := p.GetPaths(ctx, domain, key, GetPathsOptions{})
	if err != nil {
		return 0, err
	}
	if len(paths) == 0 {
		return 0, fmt.Errorf("client: fetch %q: %w", key, ErrNoPaths)
	}
	var errs []error
	for _, path := range paths {
		n, err := p.get(ctx, path, info.Length, w)
		if err == nil {
			return n, nil
		}
		errs = append(errs, err)
		if n > 0 || ctx.Err() != nil {
			return n, fmt.Errorf("client: fetch %q: %w", key, err)
		}
	}
	return 0, fmt.Errorf("client: fetch %q: every copy failed: %w", key, errors.Join(errs...))
}

// errWrongLength marks a copy whose size differs from the file's recorded length; it is skipped
// before any byte is written.
var errWrongLength = errors.New("copy length differs from the file's length")

// get copies the body at url to w. want is the file's length: a copy announcing another length is
// refused before anything is written, and a body that ends early or runs long is an error.
func (p *Pool) get(ctx context.Context, url string, want int64, w io.Writer) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := p.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	if resp.ContentLength >= 0 && resp.ContentLength != want {
		return 0, fmt.Errorf("GET %s: %d bytes, want %d: %w", url, resp.ContentLength, want, errWrongLength)
	}
	n, err := io.Copy(w, io.LimitReader(resp.Body, want+1))
	if err != nil {
		return n, fmt.Errorf("GET %s: after %d bytes: %w", url, n, err)
	}
	if n != want {
		return n, fmt.Errorf("GET %s: got %d of %d bytes: %w", url, n, want, io.ErrUnexpectedEOF)
	}
	return n, nil
}
