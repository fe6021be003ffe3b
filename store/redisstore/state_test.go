package redisstore_test

import (
	"fmt"
	"math"
)

// decodeState reads a bucket as script.lua stores it (16 bytes,
// big-endian): 2 bytes (e + 1100) * 2 + sign, 7 bytes |m| * 2^53 with
// tokens = m * 2^e as math.frexp splits them, 7 bytes the last update in
// microseconds of Redis TIME.
func decodeState(s string) (tokens float64, last int64, err error) {
	if len(s) != 16 {
		return 0, 0, fmt.Errorf("bucket state %q: %d bytes, want 16", s, len(s))
	}
	be := func(b string) (v uint64) {
		for i := range len(b) {
			v = v<<8 | uint64(b[i])
		}
		return v
	}
	e := be(s[:2])
	tokens = math.Ldexp(float64(be(s[2:9])), int(e/2)-1100-53)
	if e%2 == 1 {
		tokens = -tokens
	}
	return tokens, int64(be(s[9:])), nil
}

// encodeState is decodeState's inverse, for tests that plant a bucket.
func encodeState(tokens float64, last int64) string {
	m, e := math.Frexp(tokens)
	ex := uint64(e+1100) * 2
	if m < 0 {
		m, ex = -m, ex+1
	}
	b := make([]byte, 16)
	b[0], b[1] = byte(ex>>8), byte(ex)
	mm := uint64(m * (1 << 53))
	for i := range 7 {
		b[8-i] = byte(mm >> (8 * i))
		b[15-i] = byte(uint64(last) >> (8 * i))
	}
	return string(b)
}
