package redisstore_test

import (
	"strings"
	"testing"

	"github.com/alicebob/miniredis/v2"

	"github.com/floodgate-go/floodgate/store/redisstore"
	"github.com/floodgate-go/floodgate/store/storetest"
)

// FuzzKey checks the shape that makes Redis keys collision-free (see
// Store.Key): prefix, a marker, then a body without ':', '{' or '}' of
// bounded length; raw bodies only for raw-safe keys, and two different
// keys never map to the same Redis key.
func FuzzKey(f *testing.F) {
	for _, k := range storetest.HostileKeys() {
		f.Add(k, k+"x")
	}
	m := miniredis.RunT(f)
	s, err := redisstore.New(newClient(f, m.Addr()), redisstore.WithPrefix("p:{x}"))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		ka, kb := s.Key(a), s.Key(b)
		if (ka == kb) != (a == b) {
			t.Fatalf("Key(%q) = %q, Key(%q) = %q", a, ka, b, kb)
		}
		body, ok := strings.CutPrefix(ka, "p:{x}:")
		marker, body, ok2 := strings.Cut(body, ":")
		if !ok || !ok2 {
			t.Fatalf("Key(%q) = %q: no prefix and marker", a, ka)
		}
		if strings.ContainsAny(body, ":{}") || len(body) > 64 {
			t.Fatalf("Key(%q) = %q: body %q has a separator or hash tag, or is too long", a, ka, body)
		}
		if marker == "r2" && body != a || marker != "r2" && marker != "h2" {
			t.Fatalf("Key(%q) = %q: wrong marker %q", a, ka, marker)
		}
	})
}
