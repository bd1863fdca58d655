// Package purge owns cache invalidation requests: who may purge (address rules, a bearer token, HMAC
// signatures), what a purge path means (one URI, a prefix ending in "*", or "/*" for everything;
// with ?tag=T, every entry stored with a tag), the JSON reply, and fan-out to the other gateways of
// a cluster with a durable journal for peers that were unreachable.
//
// It knows nothing of the cache or of any HTTP server. The caller passes a Target (the gateway passes
// its cache) and turns its own requests into a Request; HTTPHandler does that for net/http.
//
// The configuration is the `purge:` block of the gateway section:
//
//	gateway:
//	  purge:
//	    path: /purge
//	    allow: [127.0.0.1, 10.0.0.0/8]
//	    token: "long random string"
//	    peers: [gw2:8080, gw3:8080]
//	    journal_dir: /var/lib/mogway/purge
package purge

import (
	"net/netip"
	"strings"
)

// Target is what a purge acts on. The cache implements it. Each method removes (or, when soft is
// true, marks stale) the matching entries and reports how many entries and bytes were affected; zero
// entries means nothing matched. Methods are called concurrently from Handle.
type Target interface {
	// Purge removes every cached entry of one URI path (all its keys and slices).
	Purge(group string, soft bool) (entries int, bytes int64)
	// PurgePrefix removes every entry whose URI path starts with prefix.
	PurgePrefix(prefix string, soft bool) (entries int, bytes int64)
	// PurgeAll removes everything.
	PurgeAll(soft bool) (entries int, bytes int64)
}

// TagPurger is the optional capability of a Target to purge by tag (surrogate key): a Target that
// implements it gets tag purges (PURGE <path>?tag=T); one that does not purges nothing for them,
// although they still travel to the peers.
type TagPurger interface {
	// PurgeTag removes (or marks stale) every entry stored with tag.
	PurgeTag(tag string, soft bool) (entries int, bytes int64)
}

// Header and query parameter names used on the wire. A transport builds a Request from them with
// NewRequest; peers are sent the same names.
const (
	// HeaderSignature carries a signature made by Sign: "<expiry unix seconds>:<hex HMAC-SHA256>".
	HeaderSignature = "X-Purge-Signature"
	// HeaderForwarded marks a purge forwarded by another node; its receiver does not fan out again.
	HeaderForwarded = "X-Mogway-Purge-Forwarded"
	// QuerySignature is the query parameter alternative to HeaderSignature.
	QuerySignature = "sig"
	// QuerySoft asks for a soft purge ("1", "true", "yes" or "on").
	QuerySoft = "soft"
	// QueryTag asks for a tag purge: every entry stored with that tag, whatever its path.
	QueryTag = "tag"
)

// Request is one purge request, independent of the transport that received it.
type Request struct {
	// Method is the HTTP method: GET, PURGE or DELETE are accepted.
	Method string
	// Path is what follows the purge route prefix, decoded: "/images/a.jpg", "/images/*" or "/*".
	// With Tag set it must be empty or "/".
	Path string
	// Tag, when set, asks for a tag purge (query parameter tag) instead of a path purge.
	Tag string
	// RemoteIP is the client address checked against the allow/deny rules.
	RemoteIP netip.Addr
	// Authorization is the Authorization header value; "Bearer <token>" is checked against the token.
	Authorization string
	// Signature is a value made by Sign (header X-Purge-Signature or query parameter sig).
	Signature string
	// Soft asks for a soft purge (entries marked stale rather than removed).
	Soft bool
	// FromPeer marks a request forwarded by another node: it is applied locally only, and answered
	// 200 even when nothing matched so the sender knows it was accepted.
	FromPeer bool
}

// NewRequest builds a Request from transport accessors: header and query return the named header or
// query parameter ("" when absent). path must already have the route prefix removed.
func NewRequest(method, path string, remote netip.Addr, header, query func(name string) string) Request {
	sig := header(HeaderSignature)
	if sig == "" {
		sig = query(QuerySignature)
	}
	return Request{
		Method:        strings.ToUpper(method),
		Path:          path,
		RemoteIP:      remote,
		Authorization: header("Authorization"),
		Signature:     sig,
		Soft:          truthy(query(QuerySoft)),
		Tag:           query(QueryTag),
		FromPeer:      header(HeaderForwarded) != "",
	}
}

func truthy(v string) bool {
	switch strings.ToLower(v) {
	case "1", "true", "yes", "on":
		return true
	}
	return false
}

// Response is the reply to a Request: the transport writes Status, a Content-Type header and Body.
type Response struct {
	Status      int
	ContentType string
	// Allow is set on 405 replies: the value of the Allow header.
	Allow string
	Body  []byte
}

// Result is the JSON body of a purge reply.
type Result struct {
	// Key is the purge path as requested: "/images/a.jpg", "/images/*" or "/*"; for a tag purge it
	// is "tag:" and the tag.
	Key string `json:"key"`
	// Tag is the tag of a tag purge.
	Tag string `json:"tag,omitempty"`
	// Soft is true when entries were marked stale rather than removed.
	Soft bool `json:"soft,omitempty"`
	// Purged and Bytes add up the entries and bytes of every node that applied the purge.
	Purged int   `json:"purged"`
	Bytes  int64 `json:"bytes"`
	// Nodes has one result per node, this node first.
	Nodes []NodeResult `json:"nodes"`
}

// Node states in a NodeResult.
const (
	NodeOK     = "ok"     // the node applied the purge
	NodeQueued = "queued" // the peer did not accept it now; it is in the journal and will be retried
	NodeFailed = "failed" // the peer did not accept it and it could not be journaled
)

// NodeResult is what one node did with a purge.
type NodeResult struct {
	// Node is this node's name or the peer as configured.
	Node   string `json:"node"`
	Status string `json:"status"`
	Purged int    `json:"purged"`
	Bytes  int64  `json:"bytes"`
	Error  string `json:"error,omitempty"`
}

// errorBody is the JSON body of a refused request.
type errorBody struct {
	Error string `json:"error"`
}
