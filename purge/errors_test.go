package purge

import "testing"

// The text of exported errors is part of the API: callers and logs match on it.
func TestErrorText(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{ErrEmptyPath, "purge: empty path; write /<uri>, /<prefix>* or /*"},
		{ErrBadPath, "purge: path must begin with / and be valid UTF-8 without control characters"},
		{ErrLongPath, "purge: path too long"},
		{ErrBadSignature, "purge: malformed signature; want <expiry unix seconds>:<64 hex digits>"},
		{ErrExpiredSignature, "purge: signature expired"},
		{ErrForgedSignature, "purge: signature does not match"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}
