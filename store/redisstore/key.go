package redisstore

import (
	"crypto/sha256"
	"encoding/hex"
)

// maxRawKey is the longest client key stored as given.
const maxRawKey = 64

// Key returns the Redis key holding key's bucket: the prefix, then ":r2:"
// and the key itself when it is short and made of safe bytes only, or
// ":h2:" and the hex SHA-256 of the key otherwise.
//
// The 2 is the version of the bucket's state format (script.lua): version 1
// buckets, under ":r:" and ":h:", held text ("%.17g %.17g"), which this
// script does not read and the version 1 script could not read in the
// binary format. With new markers, during a rolling deploy each version
// keeps its own buckets, both exact, instead of one version failing on the
// other's state; the old buckets expire when they would be full.
//
// Why no two client keys (in any two namespaces) can share a Redis key:
// the part after the last ':' is the raw key or a digest, neither of which
// contains ':', so the last ':' splits every Redis key unambiguously into
// prefix + marker and body; the marker (r2 or h2) says how the body was
// made; raw bodies are distinct for distinct keys, and digests collide only
// if SHA-256 does. The safe bytes exclude '{' and '}', so a client cannot
// choose a Cluster hash tag and pile keys onto one slot.
func (r *Store) Key(key string) string {
	if isRaw(key) {
		return r.prefix + ":r2:" + key
	}
	sum := sha256.Sum256([]byte(key))
	var buf [len(":h2:") + 2*sha256.Size]byte
	copy(buf[:], ":h2:")
	hex.Encode(buf[len(":h2:"):], sum[:])
	return r.prefix + string(buf[:])
}

func isRaw(key string) bool {
	if len(key) > maxRawKey {
		return false
	}
	for i := 0; i < len(key); i++ {
		if !safe[key[i]] {
			return false
		}
	}
	return true
}

// safe marks the bytes a raw key may contain.
var safe = func() (t [256]bool) {
	for c := range 256 {
		t[c] = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '-' || c == '_'
	}
	return t
}()
