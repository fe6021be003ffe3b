package bench

import (
	"fmt"
	"strconv"
	"sync"
)

// IPv4Key returns the i-th client key: a dotted-quad IPv4 address, the key a
// middleware derives from a typical client. Keys are distinct for
// 0 <= i < 1<<32 - 1<<24 (they start at 1.0.0.0). Each call allocates a new
// string, so a limiter that keeps the key pays for it in memory measurements.
func IPv4Key(i int) string {
	a := uint32(i) + 1<<24
	var buf [15]byte
	b := strconv.AppendUint(buf[:0], uint64(a>>24), 10)
	b = append(b, '.')
	b = strconv.AppendUint(b, uint64(a>>16&0xff), 10)
	b = append(b, '.')
	b = strconv.AppendUint(b, uint64(a>>8&0xff), 10)
	b = append(b, '.')
	b = strconv.AppendUint(b, uint64(a&0xff), 10)
	return string(b)
}

// Keys returns n distinct keys, IPv4Key(0) to IPv4Key(n-1). IPv4Key is
// injective (TestIPv4KeyDistinct); Keys verifies that every slot is filled
// and that neighbours differ, so a workload can never silently hit fewer
// keys than it claims.
func Keys(n int) ([]string, error) {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = IPv4Key(i)
		if keys[i] == "" || (i > 0 && keys[i] == keys[i-1]) {
			return nil, fmt.Errorf("bench: key %d (%q) is empty or repeated", i, keys[i])
		}
	}
	return keys, nil
}

var (
	keyCacheMu sync.Mutex
	keyCache   = map[int][]string{}
)

// SharedKeys is Keys(n), built once per n and shared by every benchmark
// round. Callers must not modify the slice.
func SharedKeys(n int) ([]string, error) {
	keyCacheMu.Lock()
	defer keyCacheMu.Unlock()
	if k, ok := keyCache[n]; ok {
		return k, nil
	}
	k, err := Keys(n)
	if err != nil {
		return nil, err
	}
	keyCache[n] = k
	return k, nil
}
