package gateway

import (
	"bufio"
	"io"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"time"
)

// accessRecord is one request as the access log shows it. The handler fills it; whoever finishes the
// response (the handler, or a body stream once the last byte is written) logs it.
type accessRecord struct {
	remote    netip.Addr // formatted only when the line is written
	user      string
	method    string
	uri       string
	proto     string
	referer   string
	userAgent string
	status    int
	bytes     int64
	upstreams []string
	times     []time.Duration
	upBuf     [2]string // backs upstreams and times for the usual one or two attempts
	timeBuf   [2]time.Duration
	cache     string
	hedge     string // "sent" when a hedge was sent and the first attempt answered, "won" when the hedge did
	streamed  bool   // a body stream logs the record when it closes
	bodyRead  bool   // the request body was read to its end

	start   time.Time     // when the handler began, for the latency histogram
	metrics *routeMetrics // the matched route's counters; nil before a route matched
}

func (r *accessRecord) addUpstream(addr string, d time.Duration) {
	if r.upstreams == nil {
		r.upstreams, r.times = r.upBuf[:0], r.timeBuf[:0]
	}
	r.upstreams = append(r.upstreams, addr)
	r.times = append(r.times, d)
}

// appendAccessLine formats r in nginx's "combined" format followed by four fields:
//
//	$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer"
//	"$http_user_agent" $upstream_addr $upstream_response_time $cache_status $hedge
//
// Several upstream attempts are joined with "," (no space, unlike nginx's ", ", so every field stays
// one space-separated token), the one that answered last; a missing value is "-".
func appendAccessLine(b []byte, r *accessRecord, now time.Time) []byte {
	if r.remote.IsValid() {
		b = r.remote.AppendTo(b)
	} else {
		b = append(b, '-')
	}
	b = append(b, " - "...)
	b = append(b, orDash(r.user)...)
	b = append(b, " ["...)
	b = now.AppendFormat(b, "02/Jan/2006:15:04:05 -0700")
	b = append(b, "] \""...)
	b = appendEscaped(b, r.method)
	b = append(b, ' ')
	b = appendEscaped(b, r.uri)
	b = append(b, ' ')
	b = appendEscaped(b, r.proto)
	b = append(b, "\" "...)
	b = strconv.AppendInt(b, int64(r.status), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, r.bytes, 10)
	b = append(b, " \""...)
	b = appendEscaped(b, orDash(r.referer))
	b = append(b, "\" \""...)
	b = appendEscaped(b, orDash(r.userAgent))
	b = append(b, "\" "...)
	if len(r.upstreams) == 0 {
		b = append(b, "- -"...)
	} else {
		for i, u := range r.upstreams {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendEscaped(b, u)
		}
		b = append(b, ' ')
		for i, d := range r.times {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendFloat(b, d.Seconds(), 'f', 3, 64)
		}
	}
	b = append(b, ' ')
	b = append(b, orDash(r.cache)...)
	b = append(b, ' ')
	b = append(b, orDash(r.hedge)...)
	return append(b, '\n')
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// appendEscaped writes s as nginx escapes log variables: '"', '\' and bytes outside 0x20-0x7E as \xHH.
func appendEscaped(b []byte, s string) []byte {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '"' || c == '\\' || c < 0x20 || c > 0x7e {
			b = append(b, '\\', 'x', hex[c>>4], hex[c&15])
			continue
		}
		b = append(b, c)
	}
	return b
}

// accessLog is the buffered access log writer. It is safe for concurrent use.
type accessLog struct {
	mu   sync.Mutex // guards w, f and buf
	w    *bufio.Writer
	f    *os.File // the open file when path names one; reopened on reload for logrotate
	path string
	buf  []byte
	now  func() time.Time
}

// openAccessLog opens the log named by path ("stdout", "off" or a file), unless w is given, which
// then receives every line. It returns nil for "off".
func openAccessLog(path string, w io.Writer, now func() time.Time) (*accessLog, error) {
	l := &accessLog{path: path, now: now}
	switch {
	case w != nil:
		l.w = bufio.NewWriterSize(w, 64<<10)
		l.path = ""
	case path == "off":
		return nil, nil
	case path == "stdout":
		l.w = bufio.NewWriterSize(os.Stdout, 64<<10)
		l.path = ""
	default:
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return nil, err
		}
		l.f = f
		l.w = bufio.NewWriterSize(f, 64<<10)
	}
	return l, nil
}

func (l *accessLog) write(r *accessRecord) {
	if l == nil {
		return
	}
	now := l.now()
	l.mu.Lock()
	l.buf = appendAccessLine(l.buf[:0], r, now)
	l.w.Write(l.buf) //nolint:errcheck // a full disk must not stop serving; flush reports it
	l.mu.Unlock()
}

// flush writes buffered lines out.
func (l *accessLog) flush() error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Flush()
}

// reopen flushes and reopens a file log, so that a rotated file is let go (logrotate, then SIGHUP).
func (l *accessLog) reopen() error {
	if l == nil || l.f == nil {
		return l.flush()
	}
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	err = l.w.Flush()
	old := l.f
	l.f = f
	l.w.Reset(f)
	if cerr := old.Close(); err == nil {
		err = cerr
	}
	return err
}

func (l *accessLog) close() error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	err := l.w.Flush()
	if l.f != nil {
		if cerr := l.f.Close(); err == nil {
			err = cerr
		}
		l.f = nil
	}
	return err
}
