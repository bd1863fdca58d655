// Package netx holds the network helpers of mogway's servers and clients: raw socket calls, a write
// followed by a wait for the answer, held bytes, the liveness probe of a pooled connection. It imports
// no mogway package.
package netx

import "errors"

// Reasons PeerClosed gives for an idle connection that can no longer carry a request.
var (
	ErrPeerEOF     = errors.New("netx: closed by the peer")
	ErrUnsolicited = errors.New("netx: unsolicited bytes from the peer")
)
