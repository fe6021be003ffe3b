package storetest

import (
	"slices"
	"testing"
)

// TestHostileKeysImmutable: a caller that changes the keys it got does not
// change what the next caller (or the suite) gets.
func TestHostileKeysImmutable(t *testing.T) {
	want := slices.Clone(HostileKeys())
	k := HostileKeys()
	k[0] = "changed"
	_ = append(k[:1], "appended")
	if got := HostileKeys(); !slices.Equal(got, want) {
		t.Fatalf("HostileKeys() after a caller changed its copy: %q…, want %q…", got[:2], want[:2])
	}
}
