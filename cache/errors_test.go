package cache

import (
	"errors"
	"io"
	"testing"

	"github.com/mogway/mogway/internal/testutil"
)

// The error texts are part of the interface: logs and alerts match on them.
func TestErrorText(t *testing.T) {
	testutil.Table(t, "Error", error.Error, map[error]string{
		ErrClosed:        "cache: closed",
		ErrShortFill:     "cache: fill ended before the declared size: unexpected EOF",
		ErrTooLong:       "cache: fill wrote more than the declared size",
		ErrNotStarted:    "cache: fill did not call Start",
		ErrAbandoned:     "cache: fill abandoned by all readers",
		ErrLockTimeout:   "cache: timed out waiting for a fill in progress",
		ErrNoPrevious:    "cache: not modified, but no stored entry to revalidate",
		ErrSliceMismatch: "cache: slices of one object disagree on size or ETag",
	})
	if !errors.Is(ErrShortFill, io.ErrUnexpectedEOF) {
		t.Errorf("errors.Is(ErrShortFill, io.ErrUnexpectedEOF) = false, want true")
	}
}
