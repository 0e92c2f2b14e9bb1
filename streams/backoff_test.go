package streams

import (
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	b := NewBackoff(50*time.Millisecond, 200*time.Millisecond)
	var got []time.Duration
	for range 5 {
		got = append(got, b.Next())
	}
	want := []time.Duration{50, 100, 200, 200, 200}
	for i := range want {
		if got[i] != want[i]*time.Millisecond {
			t.Fatalf("delays %v, want %v ms", got, want)
		}
	}
	b.Reset()
	if d := b.Next(); d != 50*time.Millisecond {
		t.Fatalf("after Reset: %v", d)
	}
}
