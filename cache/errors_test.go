package cache

import (
	"errors"
	"io"
	"testing"
)

// The error texts are part of the interface: logs and alerts match on them.
func TestErrorText(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{ErrClosed, "cache: closed"},
		{ErrShortFill, "cache: fill ended before the declared size: unexpected EOF"},
		{ErrTooLong, "cache: fill wrote more than the declared size"},
		{ErrNotStarted, "cache: fill did not call Start"},
		{ErrAbandoned, "cache: fill abandoned by all readers"},
		{ErrLockTimeout, "cache: timed out waiting for a fill in progress"},
		{ErrNoPrevious, "cache: not modified, but no stored entry to revalidate"},
		{ErrSliceMismatch, "cache: slices of one object disagree on size or ETag"},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
	if !errors.Is(ErrShortFill, io.ErrUnexpectedEOF) {
		t.Errorf("errors.Is(ErrShortFill, io.ErrUnexpectedEOF) = false, want true")
	}
}
