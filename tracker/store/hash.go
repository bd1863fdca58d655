package store

import (
	"crypto/md5"
	"crypto/sha1"
	"hash"
)

// Hash is a MogileFS digest algorithm, as stored in class.hashtype and checksum.hashtype. The zero
// value HashNone means no digest is kept.
type Hash int

// The hash types of the MogileFS schema.
const (
	HashNone Hash = 0
	HashMD5  Hash = 1
	HashSHA1 Hash = 2
)

// hashes is the one table of digest algorithms: the wire name (create_class hashtype, create_close
// checksum "<name>:<hex>", the side channel's "<name> <uri>"), the digest size and its constructor.
var hashes = [...]struct {
	name string
	size int
	new  func() hash.Hash
}{
	HashMD5:  {"MD5", md5.Size, md5.New},
	HashSHA1: {"SHA-1", sha1.Size, sha1.New},
}

func (h Hash) known() bool { return h > HashNone && int(h) < len(hashes) }

// String returns the wire name of h: "MD5", "SHA-1", or "NONE" for HashNone and unknown types.
func (h Hash) String() string {
	if !h.known() {
		return "NONE"
	}
	return hashes[h].name
}

// Size returns the length in bytes of h's digest, or 0 for HashNone and unknown types.
func (h Hash) Size() int {
	if !h.known() {
		return 0
	}
	return hashes[h].size
}

// New returns a fresh digest for h, or nil for HashNone and unknown types.
func (h Hash) New() hash.Hash {
	if !h.known() {
		return nil
	}
	return hashes[h].new()
}

// ParseHash returns the hash type with the wire name name ("MD5" or "SHA-1", case-sensitive). It
// reports false for any other name, "NONE" included.
func ParseHash(name string) (Hash, bool) {
	for h := HashMD5; h.known(); h++ {
		if hashes[h].name == name {
			return h, true
		}
	}
	return HashNone, false
}
