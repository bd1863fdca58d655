package netx

import (
	"net"
	"sync"
)

// WriteReader is a connection that can write a request and wait for its answer without first
// reading the socket (see RawTCP.WriteRead).
type WriteReader interface {
	WriteRead(w, p []byte) (int, error)
	// WriteReadHook is WriteRead calling written once, from the calling goroutine, as soon as w
	// is written or its write failed, before the wait for the answer, with the count of bytes of
	// w written: 0 when nothing was (the deadline had passed or the connection was closed, say).
	WriteReadHook(w, p []byte, written func(n int)) (int, error)
}

// Held keeps what is written to a connection until its next read, which writes it and then waits
// for the answer without a read that finds nothing (WriteReader): a system call fewer for each
// answer a server sends (or request a client sends) and then waits for the next.
//
// One goroutine reads the connection; only it calls SetOn and Read. Mu guards the held bytes, and
// Read keeps it while it writes them, so that another goroutine holding Mu (to write, or to close
// the connection after FlushLocked) never sends them twice nor closes the socket under them.
type Held struct {
	Mu sync.Mutex

	c    net.Conn
	wr   WriteReader
	on   bool   // the reading goroutine's: the next read writes what is held first
	held []byte // guarded by Mu, as is lent
	lent bool   // held is the caller's buffer (Hold), not h's own
	sent func(int)
}

// Init readies h for c; h holds nothing unless c is a WriteReader (a TCP connection through Raw,
// on Linux).
func (h *Held) Init(c net.Conn) {
	h.c = c
	h.wr, _ = c.(WriteReader)
	h.sent = h.wrote
}

// Enabled reports whether h can hold bytes for c.
func (h *Held) Enabled() bool { return h.wr != nil }

// On reports whether the next read writes held bytes first (see SetOn).
func (h *Held) On() bool { return h.on }

// SetOn turns holding on (the bytes written from now on are complete: nothing the writer still
// waits for comes before the next read) or off, which writes what was held. Only the reading
// goroutine calls it, and only when Enabled.
func (h *Held) SetOn(on bool) error {
	if on || !h.on {
		h.on = on
		return nil
	}
	h.on = false
	return h.Flush()
}

// Append holds a copy of p after the bytes held already. Mu must be held, and nothing be held by
// Hold.
func (h *Held) Append(p []byte) { h.held = append(h.held, p...) }

// Hold holds p itself, which its owner leaves alone until it was written. Mu must be held, and
// nothing be held already.
func (h *Held) Hold(p []byte) { h.held, h.lent = p, true }

// Len is the number of bytes held. Mu must be held.
func (h *Held) Len() int { return len(h.held) }

// FlushLocked writes the held bytes, if any. Mu must be held.
func (h *Held) FlushLocked() error {
	if len(h.held) == 0 {
		return nil
	}
	_, err := h.c.Write(h.held)
	h.drop()
	return err
}

// Flush writes the held bytes, if any, from any goroutine.
func (h *Held) Flush() error {
	h.Mu.Lock()
	defer h.Mu.Unlock()
	return h.FlushLocked()
}

// maxKept is the largest buffer kept for the next bytes held.
const maxKept = 64 << 10

func (h *Held) drop() {
	if h.lent || cap(h.held) > maxKept {
		h.held, h.lent = nil, false
	}
	h.held = h.held[:0]
}

// Read reads the connection into p, first writing what is held when holding is on.
func (h *Held) Read(p []byte) (int, error) {
	if !h.on {
		return h.c.Read(p)
	}
	h.on = false
	h.Mu.Lock()
	if len(h.held) == 0 {
		h.Mu.Unlock()
		return h.c.Read(p)
	}
	return h.wr.WriteReadHook(h.held, p, h.sent)
}

// wrote ends Read's write of the held bytes, of which it wrote n. When it wrote none (its deadline
// had passed), they stay held, and the next read or FlushLocked writes them.
func (h *Held) wrote(n int) {
	if n > 0 {
		h.drop()
	} else {
		h.on = true
	}
	h.Mu.Unlock()
}

// Request is the reading side of a client connection that writes each request with the first read
// of its answer (WriteReader): Hold the request instead of writing it, then read the answer through
// Request. Only the goroutine that sends and reads uses it.
type Request struct {
	c    net.Conn
	wr   WriteReader
	held []byte
	sent func(int) // r.wrote, made once so that Read does not allocate it
}

// NewRequest returns the Request of c.
func NewRequest(c net.Conn) *Request {
	r := &Request{c: c}
	r.wr, _ = c.(WriteReader)
	r.sent = r.wrote
	return r
}

// Hold keeps p, which its owner leaves alone until the next Read, to be written by that Read. It
// reports false, holding nothing, when c cannot do that: the caller then writes p itself.
func (r *Request) Hold(p []byte) bool {
	if r.wr == nil {
		return false
	}
	r.held = p
	return true
}

// Read reads the answer into p, first writing the held request, if any. A request that the read
// could not write at all (its deadline had passed) stays held, and the next read writes it: a caller
// that waits on after a read deadline (a HEAD given a short first deadline) never waits for the
// answer to a request that was not sent.
func (r *Request) Read(p []byte) (int, error) {
	if len(r.held) == 0 {
		return r.c.Read(p)
	}
	return r.wr.WriteReadHook(r.held, p, r.sent)
}

// wrote ends Read's write of the held request, of which it wrote n bytes.
func (r *Request) wrote(n int) {
	if n > 0 {
		r.held = nil
	}
}
