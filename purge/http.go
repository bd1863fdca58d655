package purge

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// HTTPHandler returns a net/http handler for the purge route: it serves every path under the
// configured path prefix (mount it at "<path>/"), strips the prefix and answers with Handle. The
// client address is the connection's remote address; X-Forwarded-For is not trusted.
func (s *Service) HTTPHandler() http.Handler {
	prefix := s.cfg.path()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rest, ok := strings.CutPrefix(r.URL.Path, prefix)
		if !ok || (rest != "" && rest[0] != '/') {
			http.NotFound(w, r)
			return
		}
		q := r.URL.Query()
		req := NewRequest(r.Method, rest, remoteIP(r.RemoteAddr), r.Header.Get, q.Get)
		resp := s.Handle(r.Context(), req)
		if resp.Allow != "" {
			w.Header().Set("Allow", resp.Allow)
		}
		w.Header().Set("Content-Type", resp.ContentType)
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(resp.Status)
		w.Write(resp.Body)
	})
}

// remoteIP parses a net/http RemoteAddr ("1.2.3.4:5678", "[::1]:5678"); invalid when unparseable.
func remoteIP(addr string) netip.Addr {
	if ap, err := netip.ParseAddrPort(addr); err == nil {
		return ap.Addr()
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	ip, _ := netip.ParseAddr(host)
	return ip
}
