package syncmap

import (
	"math/rand/v2"
	"testing"
)

// TestModel applies random operations to a Map and to a plain map and
// compares every result.
func TestModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var m Map[int, *int]
	model := map[int]*int{}
	for i := range 10_000 {
		k := rng.IntN(50)
		switch rng.IntN(4) {
		case 0:
			got, ok := m.Load(k)
			want, wok := model[k]
			if got != want || ok != wok {
				t.Fatalf("op %d: Load(%d) = %p, %v; want %p, %v", i, k, got, ok, want, wok)
			}
		case 1:
			v := new(int)
			got, loaded := m.LoadOrStore(k, v)
			want, wok := model[k]
			if !wok {
				model[k], want = v, v
			}
			if got != want || loaded != wok {
				t.Fatalf("op %d: LoadOrStore(%d) = %p, %v; want %p, %v", i, k, got, loaded, want, wok)
			}
		case 2:
			old := model[k]
			if rng.IntN(2) == 0 {
				old = new(int) // a stale value: must not delete
			}
			deleted := m.CompareAndDelete(k, old)
			want := old != nil && model[k] == old
			if want {
				delete(model, k)
			}
			if deleted != want {
				t.Fatalf("op %d: CompareAndDelete(%d) = %v, want %v", i, k, deleted, want)
			}
		case 3:
			seen := map[int]*int{}
			m.Range(func(k int, v *int) bool { seen[k] = v; return true })
			if len(seen) != len(model) {
				t.Fatalf("op %d: Range saw %d entries, want %d", i, len(seen), len(model))
			}
			for k, v := range model {
				if seen[k] != v {
					t.Fatalf("op %d: Range saw %d => %p, want %p", i, k, seen[k], v)
				}
			}
		}
	}
}
