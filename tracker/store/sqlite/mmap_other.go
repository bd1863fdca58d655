//go:build !unix

package sqlite

import (
	"errors"
	"os"
)

// mapReadOnly is not available here: the Locate cache reads the generation row on every call.
func mapReadOnly(*os.File, int) ([]byte, error) {
	return nil, errors.New("memory-mapped files are not supported on this system")
}

func unmap([]byte) error { return nil }
