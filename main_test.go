package main

import (
	"math"
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

// TestCollectLate: a command that runs once is not collected until its
// heap reaches oneShotHeap; after the first collection it is collected as
// with GOGC=400, with no limit.
func TestCollectLate(t *testing.T) {
	gcPercent := func() int { p := debug.SetGCPercent(100); debug.SetGCPercent(p); return p }
	limit := func() int64 { return debug.SetMemoryLimit(-1) }
	defer debug.SetGCPercent(gcPercent())
	defer debug.SetMemoryLimit(limit())

	collectLate()
	if p, l := gcPercent(), limit(); p != -1 || l != oneShotHeap {
		t.Fatalf("before the first collection: GOGC %d, limit %d; want off, %d", p, l, oneShotHeap)
	}
	runtime.GC()
	deadline := time.Now().Add(5 * time.Second)
	for gcPercent() != 400 {
		if time.Now().After(deadline) {
			t.Fatalf("after a collection: GOGC %d, want 400", gcPercent())
		}
		time.Sleep(time.Millisecond)
	}
	if l := limit(); l != math.MaxInt64 {
		t.Errorf("after a collection: memory limit %d, want none", l)
	}
}
