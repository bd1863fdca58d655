package storaged

import (
	"bufio"
	"context"
	"crypto/md5"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// maxMgmtLine bounds one side-channel command line; a longer line ends the connection.
const maxMgmtLine = 4096

// serveMgmt accepts side-channel connections on ln until ctx is done or ln is closed. On ctx done
// each connection finishes the command it is running, answers it and is closed.
func (s *Server) serveMgmt(ctx context.Context, ln net.Listener) {
	stop := context.AfterFunc(ctx, func() {
		ln.Close()
		s.mu.Lock()
		for c := range s.mgmtConns {
			c.SetReadDeadline(time.Now()) // wakes the reader; the command in progress still completes
		}
		s.mu.Unlock()
	})
	defer stop()
	var conns sync.WaitGroup
	defer conns.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || ctx.Err() != nil {
				return
			}
			// Out of file descriptors, say: keep the side channel alive and retry shortly.
			s.log.Warn("side channel: accept failed", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		s.mu.Lock()
		if s.closed || ctx.Err() != nil {
			s.mu.Unlock()
			c.Close()
			continue
		}
		s.mgmtConns[c] = struct{}{}
		s.mu.Unlock()
		conns.Add(1)
		go func() {
			defer conns.Done()
			defer func() {
				s.mu.Lock()
				delete(s.mgmtConns, c)
				s.mu.Unlock()
				c.Close()
			}()
			defer func() {
				if r := recover(); r != nil {
					s.log.Error("side channel: handler crashed", "panic", r)
				}
			}()
			s.mgmtConn(ctx, c)
		}()
	}
}

// mgmtConn answers the commands of one connection, in order, one reply line per command line.
// After "watch" the connection only streams utilisation until ctx is done.
func (s *Server) mgmtConn(ctx context.Context, c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetKeepAlive(true)
	}
	r := bufio.NewReaderSize(c, maxMgmtLine)
	w := bufio.NewWriter(c)
	for {
		line, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			w.WriteString("ERROR: line too long\r\n")
			w.Flush()
			return
		}
		if err != nil && (len(line) == 0 || err != io.EOF) {
			return
		}
		s.stats.mgmtCommands.Add(1)
		cmd := strings.TrimRight(string(line), "\r\n")
		if strings.TrimSpace(cmd) == "watch" {
			w.Flush()
			s.watch(ctx, w)
			return
		}
		s.mgmtCommand(w, cmd)
		if r.Buffered() == 0 || err != nil {
			if w.Flush() != nil || err != nil {
				return
			}
		}
	}
}

// mgmtCommand answers one line (without its line ending) on w.
func (s *Server) mgmtCommand(w *bufio.Writer, line string) {
	fields := strings.Fields(line)
	if len(fields) == 0 {
		w.WriteString("\r\n")
		return
	}
	cmd := fields[0]
	if cmd != "size" && cmd != "MD5" && cmd != "SHA-1" {
		fmt.Fprintf(w, "ERROR: unknown command: %s\r\n", cmd)
		return
	}
	if len(fields) < 2 {
		fmt.Fprintf(w, "ERROR: %s needs a uri\r\n", cmd)
		return
	}
	uri := fields[1]
	if strings.Contains(uri, "..") {
		w.WriteString("ERROR: uri invalid (contains ..)\r\n")
		return
	}
	if cmd == "size" {
		fmt.Fprintf(w, "%s %d\r\n", uri, s.sizeOf(uri))
		return
	}
	fsck := len(fields) > 2 && fields[2] == "fsck"
	w.WriteString(s.digest(cmd, uri, fsck))
}

// mgmtPath maps a side-channel URI ("/dev1/0/000/000/0000000001.fid", or a full http:// URL) to a
// docroot-relative path; ok is false when it does not name something under a dev<N>.
func mgmtPath(uri string) (string, bool) {
	p := stripAbsolute(uri)
	if !strings.HasPrefix(p, "/") || strings.ContainsAny(p, "\x00\\") {
		return "", false
	}
	rel, ok := relPath(p)
	if dev, inner, _ := strings.Cut(rel, "/"); !ok || inner == "" || !isDevName(dev) {
		return "", false
	}
	return rel, true
}

// sizeOf returns the size of the regular file at uri, or -1.
func (s *Server) sizeOf(uri string) int64 {
	rel, ok := mgmtPath(uri)
	if !ok {
		return -1
	}
	fi, err := s.root.StatRead(rel)
	if err != nil || !fi.Mode().IsRegular() {
		return -1
	}
	return fi.Size()
}

// digest returns the reply line for MD5 or SHA-1 of uri. fsck digests run one at a time per device.
func (s *Server) digest(alg, uri string, fsck bool) string {
	rel, ok := mgmtPath(uri)
	if !ok {
		return uri + " " + alg + "=-1\r\n"
	}
	if fsck {
		dev, _, _ := strings.Cut(rel, "/")
		mu := s.fsckLock(dev)
		mu.Lock()
		defer mu.Unlock()
	}
	f, err := s.root.OpenRead(rel)
	if err != nil {
		return uri + " " + alg + "=-1\r\n"
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return uri + " " + alg + "=-1\r\n"
	}
	var h hash.Hash = md5.New()
	if alg == "SHA-1" {
		h = sha1.New()
	}
	bp := s.bufs.Get().(*[]byte)
	defer s.bufs.Put(bp)
	buf := *bp
	var off int64
	for {
		n, err := f.Read(buf)
		h.Write(buf[:n])
		off += int64(n)
		if err == io.EOF {
			break
		}
		if err != nil {
			s.log.Warn("side channel: read failed", "uri", uri, "offset", off, "err", err)
			return "ERR read " + uri + " at " + strconv.FormatInt(off, 10) + " failed\r\n"
		}
	}
	return uri + " " + alg + "=" + hex.EncodeToString(h.Sum(nil)) + "\r\n"
}

func (s *Server) fsckLock(dev string) *sync.Mutex {
	s.mu.Lock()
	defer s.mu.Unlock()
	mu := s.fsckLocks[dev]
	if mu == nil {
		mu = new(sync.Mutex)
		s.fsckLocks[dev] = mu
	}
	return mu
}
