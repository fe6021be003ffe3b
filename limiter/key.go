package limiter

import (
	"crypto/sha512"
	"strings"
)

// MaxKeyLen is the longest key stored as given. A longer key is replaced by
// a marker byte and its SHA-512 digest (65 bytes), so a hostile client
// cannot make the limiter store arbitrarily long keys. The digest form is
// longer than MaxKeyLen, so it can never equal a key stored as given, and
// SHA-512 makes two long keys sharing a bucket infeasible to arrange.
const MaxKeyLen = 64

// storageKey returns the form of key held in the table.
func storageKey(key string) string {
	if len(key) <= MaxKeyLen {
		return key
	}
	sum := sha512.Sum512([]byte(key))
	var b strings.Builder
	b.Grow(1 + len(sum))
	b.WriteByte(0)
	b.Write(sum[:])
	return b.String()
}
