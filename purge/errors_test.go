package purge

import (
	"testing"

	"github.com/mogway/mogway/internal/testutil"
)

// The text of exported errors is part of the API: callers and logs match on it.
func TestErrorText(t *testing.T) {
	testutil.Table(t, "Error", error.Error, map[error]string{
		ErrEmptyPath:        "purge: empty path; write /<uri>, /<prefix>* or /*",
		ErrBadPath:          "purge: path must begin with / and be valid UTF-8 without control characters",
		ErrLongPath:         "purge: path too long",
		ErrBadSignature:     "purge: malformed signature; want <expiry unix seconds>:<64 hex digits>",
		ErrExpiredSignature: "purge: signature expired",
		ErrForgedSignature:  "purge: signature does not match",
	})
}
