package gateway

import (
	"context"
	"errors"
	"net"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/mogway/mogway/tracker/mogproto"
)

// Tracker is what the gateway needs from a MogileFS tracker pool. Its methods are called
// concurrently. Tracker ERR replies come back as *mogproto.Error (errors.As), for example code
// "unknown_key"; anything else is a transport failure: a timeout (net.Error with Timeout, or
// context.DeadlineExceeded) is answered 504, any other 503.
type Tracker interface {
	// GetPaths returns the URLs of a key's copies, best first. An empty list is "paths=0". The
	// gateway calls it without a deadline: it bounds its own wait, as the tracker pool does by
	// tracker_connect + tracker_read for each tracker it tries.
	GetPaths(ctx context.Context, domain, key string, noverify bool) ([]string, error)
	// CreateOpen starts an upload and returns where to PUT the bytes, best first.
	CreateOpen(ctx context.Context, domain, key, class string) (Open, error)
	// CreateClose commits an upload written to one of Open's destinations.
	CreateClose(ctx context.Context, c Close) error
	// Delete removes a key.
	Delete(ctx context.Context, domain, key string) error
}

// Open is the answer to create_open.
type Open struct {
	Fid   int64
	Dests []Dest
}

// Dest is one destination offered by create_open.
type Dest struct {
	DevID int64
	Path  string
}

// Close is the create_close of an upload written to Path on device DevID.
type Close struct {
	Domain, Key, Class string
	Fid, DevID         int64
	Path               string
	Size               int64
}

// trackerCode returns the ERR code in err, or "".
func trackerCode(err error) string {
	var e *mogproto.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// isTimeout reports whether err is a timeout of the tracker or storage connection.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, fasthttp.ErrTimeout) || (errors.As(err, &ne) && ne.Timeout())
}

// trackerStatus maps a failed tracker command to an HTTP status, after the nginx module (spec 7.8)
// with the gateway's deliberate changes: unknown domain is 404 (nginx: 500), an unreachable tracker
// pool 503 (nginx: 502) and a slow one 504.
func trackerStatus(err error) int {
	switch trackerCode(err) {
	case mogproto.ErrUnknownKey, mogproto.ErrUnregDomain, mogproto.ErrDomainNotFound, mogproto.ErrInvalidKey:
		return 404
	case mogproto.ErrNoDevices:
		return 503
	case mogproto.ErrNoKey, mogproto.ErrUnregClass, mogproto.ErrNoDomain,
		"key_too_long": // no MogileFS tracker sends it (it has no mogproto constant); mapped since the start
		return 400
	case "":
		if isTimeout(err) {
			return 504
		}
		return 503
	}
	return 500
}

// trackerAnswer is the status and error message that answer a failed tracker command.
func trackerAnswer(err error) (int, string) {
	status := trackerStatus(err)
	return status, strings.ToLower(fasthttp.StatusMessage(status))
}
