package nethttpmw

import "sync"

// Header values owned by each response, without an allocation for each.
//
// The contract: a handler may change h[k][i] in place or append to h[k],
// and no other response sees it. So no two responses may share the array
// behind a value slice, and each slice is capped at its length, so that an
// append copies instead of writing past its end.
//
// newValues hands out disjoint, capacity-capped pieces of a block of
// blockValues strings. Each piece goes to one response and is never handed
// out again; the block is freed by the garbage collector when no response
// refers to any piece of it (a response kept alive keeps its block's 1 KiB
// alive). The block being filled is kept in a sync.Pool, so each P fills
// its own without contention: one allocation serves about 30 admitted
// responses instead of one.

// blockValues is the number of values in a block: with next, 1016
// bytes, in the allocator's 1 KiB size class.
const blockValues = 63

type valueBlock struct {
	v    [blockValues]string
	next int // v[next:] has never been handed out
}

var blocks sync.Pool // *valueBlock; Get may return nil

// newValues returns n empty values of the caller's own, with capacity n.
func newValues(n int) []string {
	if n > blockValues/4 { // a response with many limits: its own array
		return make([]string, n)
	}
	b, _ := blocks.Get().(*valueBlock)
	if b == nil || b.next+n > blockValues {
		b = new(valueBlock)
	}
	v := b.v[b.next : b.next+n : b.next+n]
	b.next += n
	blocks.Put(b)
	return v
}
