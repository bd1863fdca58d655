package cache

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"time"
)

// Cache file layout (little endian):
//
//	0  magic "mogwayC1"
//	8  flags uint32 (bit 0: soft-purged)
//	12 varLen uint32
//	16 storedAt int64 (Unix nanoseconds, 0 = zero time)
//	24 expiresAt int64
//	32 bodyLen int64
//	40 varCRC uint32 (CRC-32C of the variable part)
//	44 variable part: key, group, etag, lastModified (uvarint length + bytes), status (uvarint),
//	   size (varint), header count (uvarint), then name and value of each field; then, only when
//	   the entry has tags, the tag count (uvarint) and each tag
//	44+varLen body
//
// The tag section was added after the first release of the format: a file without it (every file
// written before, and every file of an untagged entry) has exactly the old layout, so old files
// load with no tags and untagged files load in older versions.
//
// The fixed part can be rewritten in place (revalidation, soft purge); the variable part cannot.
// A file is valid when the magic and CRC match and its length is exactly header plus bodyLen, so a
// file cut short by a crash is detected at load.

const (
	fileMagic    = "mogwayC1"
	fixedLen     = 44
	maxVarLen    = 1 << 20
	flagSoft     = 1
	offFlags     = 8
	offStoredAt  = 16
	offBodyLen   = 32
	maxHeaderCnt = 1 << 14
	maxTagCnt    = 1 << 14
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// fileHeader is the decoded header of a cache file.
type fileHeader struct {
	key, group string
	meta       Meta
	bodyLen    int64
	soft       bool
	hdrLen     int64
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// encodeHeader returns the header of a cache file.
func encodeHeader(h *fileHeader) []byte {
	m := &h.meta
	b := make([]byte, fixedLen, fixedLen+64+len(h.key)+len(h.group))
	str := func(s string) {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	str(h.key)
	str(h.group)
	str(m.ETag)
	str(m.LastModified)
	b = binary.AppendUvarint(b, uint64(m.Status))
	b = binary.AppendVarint(b, m.Size)
	b = binary.AppendUvarint(b, uint64(len(m.Header)))
	for _, f := range m.Header {
		str(f.Name)
		str(f.Value)
	}
	if len(m.Tags) > 0 {
		b = binary.AppendUvarint(b, uint64(len(m.Tags)))
		for _, t := range m.Tags {
			str(t)
		}
	}
	varPart := b[fixedLen:]
	copy(b, fileMagic)
	var flags uint32
	if h.soft {
		flags |= flagSoft
	}
	binary.LittleEndian.PutUint32(b[offFlags:], flags)
	binary.LittleEndian.PutUint32(b[12:], uint32(len(varPart)))
	putTimes(b[offStoredAt:], m.StoredAt, m.ExpiresAt)
	binary.LittleEndian.PutUint64(b[offBodyLen:], uint64(h.bodyLen))
	binary.LittleEndian.PutUint32(b[40:], crc32.Checksum(varPart, crcTable))
	return b
}

func putTimes(b []byte, stored, expires time.Time) {
	binary.LittleEndian.PutUint64(b, uint64(unixNano(stored)))
	binary.LittleEndian.PutUint64(b[8:], uint64(unixNano(expires)))
}

var errBadHeader = errors.New("cache: bad cache file header")

// parseFixed checks the fixed part and returns the length of the variable part.
func parseFixed(b []byte) (int, error) {
	if len(b) < fixedLen || string(b[:8]) != fileMagic {
		return 0, fmt.Errorf("%w: no magic", errBadHeader)
	}
	n := binary.LittleEndian.Uint32(b[12:])
	if n > maxVarLen {
		return 0, fmt.Errorf("%w: variable part of %d bytes", errBadHeader, n)
	}
	return int(n), nil
}

// parseHeader decodes a whole header (fixed and variable part).
func parseHeader(b []byte) (*fileHeader, error) {
	n, err := parseFixed(b)
	if err != nil {
		return nil, err
	}
	if len(b) != fixedLen+n {
		return nil, fmt.Errorf("%w: truncated", errBadHeader)
	}
	v := b[fixedLen:]
	if crc32.Checksum(v, crcTable) != binary.LittleEndian.Uint32(b[40:]) {
		return nil, fmt.Errorf("%w: checksum mismatch", errBadHeader)
	}
	h := &fileHeader{hdrLen: int64(len(b))}
	h.soft = binary.LittleEndian.Uint32(b[offFlags:])&flagSoft != 0
	h.meta.StoredAt = fromUnixNano(int64(binary.LittleEndian.Uint64(b[offStoredAt:])))
	h.meta.ExpiresAt = fromUnixNano(int64(binary.LittleEndian.Uint64(b[offStoredAt+8:])))
	h.bodyLen = int64(binary.LittleEndian.Uint64(b[offBodyLen:]))
	if h.bodyLen < 0 {
		return nil, fmt.Errorf("%w: negative body length", errBadHeader)
	}
	bad := false
	uv := func() uint64 {
		x, k := binary.Uvarint(v)
		if k <= 0 {
			bad = true
			return 0
		}
		v = v[k:]
		return x
	}
	str := func() string {
		l := uv()
		if bad || l > uint64(len(v)) {
			bad = true
			return ""
		}
		s := string(v[:l])
		v = v[l:]
		return s
	}
	h.key, h.group = str(), str()
	h.meta.ETag, h.meta.LastModified = str(), str()
	st := uv()
	if st > 999 {
		bad = true
	}
	h.meta.Status = int(st)
	size, k := binary.Varint(v)
	if k <= 0 || size < -1 {
		bad = true
	} else {
		v = v[k:]
	}
	h.meta.Size = size
	cnt := uv()
	if cnt > maxHeaderCnt || cnt > uint64(len(v)) {
		bad = true
	}
	if !bad && cnt > 0 {
		h.meta.Header = make([]HeaderField, 0, cnt)
		for i := uint64(0); i < cnt && !bad; i++ {
			h.meta.Header = append(h.meta.Header, HeaderField{Name: str(), Value: str()})
		}
	}
	if !bad && len(v) > 0 {
		// The tag section, absent from untagged entries and from files of older versions.
		n := uv()
		if n == 0 || n > maxTagCnt || n > uint64(len(v)) {
			bad = true
		}
		for i := uint64(0); i < n && !bad; i++ {
			h.meta.Tags = append(h.meta.Tags, str())
		}
	}
	if bad || len(v) != 0 {
		return nil, fmt.Errorf("%w: malformed variable part", errBadHeader)
	}
	return h, nil
}

// readEntryFile reads the header of the cache file at path and checks the file's length.
func readEntryFile(path string) (*entry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	fixed := make([]byte, fixedLen)
	if _, err := io.ReadFull(f, fixed); err != nil {
		return nil, fmt.Errorf("%w: %v", errBadHeader, err)
	}
	n, err := parseFixed(fixed)
	if err != nil {
		return nil, err
	}
	b := make([]byte, fixedLen+n)
	copy(b, fixed)
	if _, err := io.ReadFull(f, b[fixedLen:]); err != nil {
		return nil, fmt.Errorf("%w: %v", errBadHeader, err)
	}
	h, err := parseHeader(b)
	if err != nil {
		return nil, err
	}
	if want := h.hdrLen + h.bodyLen; info.Size() != want {
		return nil, fmt.Errorf("cache: file is %d bytes, header says %d: partial write", info.Size(), want)
	}
	if h.meta.Size < 0 {
		// A fill of unknown length: the header was written before the length was known.
		h.meta.Size = h.bodyLen
	}
	e := &entry{key: h.key, group: h.group, meta: h.meta, bodyLen: h.bodyLen, soft: h.soft,
		file: &diskFile{path: path, info: info, hdrLen: h.hdrLen, size: info.Size()}}
	return e, nil
}

// rewriteFixed updates the times and flags of the cache file at path in place, if it is still the
// file identified by info.
func rewriteFixed(path string, info os.FileInfo, meta *Meta, soft bool) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !os.SameFile(fi, info) {
		return os.ErrNotExist
	}
	var b [24]byte
	var flags uint32
	if soft {
		flags = flagSoft
	}
	binary.LittleEndian.PutUint32(b[:4], flags)
	if _, err := f.WriteAt(b[:4], offFlags); err != nil {
		return err
	}
	putTimes(b[:16], meta.StoredAt, meta.ExpiresAt)
	if _, err := f.WriteAt(b[:16], offStoredAt); err != nil {
		return err
	}
	return f.Sync()
}
