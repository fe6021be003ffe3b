package limiter

import (
	"crypto/sha512"
	"strings"
)

// maxKeyLen is the longest key stored as given. A longer key is replaced by
// a marker byte and its SHA-512 digest (65 bytes), so a hostile client
// cannot make the limiter store arbitrarily long keys. The digest form is
// longer than maxKeyLen, so it can never equal a key stored as given, and
// SHA-512 makes two long keys sharing a bucket infeasible to arrange.
const maxKeyLen = 64

// A tableKey is a key in the form the table holds it: a key16 or key32 for
// keys of up to 15 or 31 bytes, a string for longer ones. A short key boxed
// in an interface is one 16- or 32-byte allocation, where a string costs a
// 16-byte header plus its bytes in two; at a million keys that is the
// difference between 153.5 and 170 bytes per key. Values of different types
// never compare equal, and the length byte tells "a" from "a\x00", so the
// mapping is one-to-one.
type tableKey = any

type (
	key16 [16]byte // bytes, then the length in the last byte
	key32 [32]byte
)

// makeKey returns the table form of key, on the heap: for storing and
// deleting. The request path uses table.lookup, which keeps it on the stack.
func makeKey(key string) tableKey {
	switch n := len(key); {
	case n < len(key16{}):
		return short16(key)
	case n < len(key32{}):
		return short32(key)
	}
	return storageKey(key)
}

func short16(key string) (k key16) {
	copy(k[:], key)
	k[len(k)-1] = byte(len(key))
	return k
}

func short32(key string) (k key32) {
	copy(k[:], key)
	k[len(k)-1] = byte(len(key))
	return k
}

// storageKey is key, or its digest form when longer than maxKeyLen: the
// string form of a table key, for maps keyed by string.
func storageKey(key string) string {
	if len(key) <= maxKeyLen {
		return key
	}
	return digest(key)
}

// digest is the table form of a key longer than maxKeyLen.
func digest(key string) string {
	sum := sha512.Sum512([]byte(key))
	var b strings.Builder
	b.Grow(1 + len(sum))
	b.WriteByte(0)
	b.Write(sum[:])
	return b.String()
}

// ownKey returns a table key safe to store: a string key is copied, so the
// table never pins a larger buffer the caller sliced it from (a request
// header, say).
func ownKey(k tableKey) tableKey {
	if s, ok := k.(string); ok {
		return strings.Clone(s)
	}
	return k
}
