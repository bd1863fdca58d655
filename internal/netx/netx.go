// Package netx holds small network helpers shared by the gateway and the tracker client. It imports
// no mogway package.
package netx

import "errors"

// Reasons PeerClosed gives for an idle connection that can no longer carry a request.
var (
	ErrPeerEOF     = errors.New("netx: closed by the peer")
	ErrUnsolicited = errors.New("netx: unsolicited bytes from the peer")
)
