package sqlite

import (
	"fmt"
	"os"
	"runtime/debug"
	"sync/atomic"
	"unsafe"

	"github.com/mogway/mogway/tracker/store/internal/sqlstore"
)

// The WAL-index (the -shm file next to a database in WAL mode) begins with two copies of its
// 48-byte header (struct WalIndexHdr in SQLite's wal.c). A writer that commits stores the new
// header into the second copy, then into the first, so a reader that reads the first copy and
// then the second and finds them equal has read a whole header. The header holds a counter bumped
// by every commit (iChange), the last valid WAL frame (mxFrame), the WAL salts (new at every WAL
// restart) and checksums: any commit by any connection, in this process or another, changes it.
const (
	walIndexHdrSize  = 48
	walIndexHdrWords = walIndexHdrSize / 4
	walIndexMapSize  = 4096 // the first page of the file; the headers are its first 96 bytes
)

// Compile-time check that a mark holds one header copy.
var _ [walIndexHdrSize]byte = [unsafe.Sizeof(sqlstore.CommitMark{})]byte{}

// walIndex is a read-only mapping of the first page of a database's -shm file. It must only be
// read while a connection of this process keeps the database open in WAL mode: SQLite unlinks the
// file when the last connection closes, and a new one would be a different file this mapping does
// not see.
type walIndex struct {
	mem    []byte
	broken atomic.Bool // a read faulted (the file shrank under the mapping): mark reports unknown
}

// openWALIndex maps path's -shm file. The file must already hold an initialised header, which is
// the case once a connection has read the database in WAL mode.
func openWALIndex(path string) (*walIndex, error) {
	f, err := os.Open(path + "-shm")
	if err != nil {
		return nil, fmt.Errorf("sqlite: WAL index: %w", err)
	}
	defer f.Close() // the mapping outlives the descriptor
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("sqlite: WAL index: %w", err)
	}
	if fi.Size() < 2*walIndexHdrSize {
		return nil, fmt.Errorf("sqlite: WAL index %s has %d bytes, fewer than its two headers", f.Name(), fi.Size())
	}
	mem, err := mapReadOnly(f, walIndexMapSize)
	if err != nil {
		return nil, fmt.Errorf("sqlite: map WAL index %s: %w", f.Name(), err)
	}
	return &walIndex{mem: mem}, nil
}

// mark returns the current WAL-index header. ok is false when the two copies differ (a commit is
// writing them) or the header is not initialised: the caller cannot tell whether anything changed.
// It makes no system call and is safe for concurrent use.
func (w *walIndex) mark() (m sqlstore.CommitMark, ok bool) {
	if w == nil || w.broken.Load() {
		return m, false
	}
	// A fault here means the file was truncated under the mapping (see walIndex). Without
	// SetPanicOnFault it would kill the process; with it, it is a recoverable panic.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if recover() != nil {
			w.broken.Store(true)
			m, ok = sqlstore.CommitMark{}, false
		}
	}()
	words := (*[2 * walIndexHdrWords]uint32)(unsafe.Pointer(&w.mem[0]))
	same := true
	for i := range walIndexHdrWords {
		m[i] = atomic.LoadUint32(&words[i])
	}
	for i := range walIndexHdrWords {
		if atomic.LoadUint32(&words[walIndexHdrWords+i]) != m[i] {
			same = false
		}
	}
	const isInitWord = 3 // iChange is word 2; word 3 holds isInit, bigEndCksum and szPage
	isInit := (*[4]byte)(unsafe.Pointer(&m[isInitWord]))[0]
	return m, same && isInit != 0
}

// close unmaps the WAL index.
func (w *walIndex) close() error {
	if w == nil {
		return nil
	}
	return unmap(w.mem)
}
