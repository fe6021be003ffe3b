package redisstore

// SetClock replaces the clock of s's node breakers (ns on a monotonic
// clock) for a test.
func SetClock(s *Store, now func() int64) { s.now = now }
