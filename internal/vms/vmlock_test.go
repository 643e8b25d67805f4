package vms

import (
	"sync"
	"sync/atomic"
	"testing"
)

// Many goroutines on a few VMs: at most one holds a VM's lock at a time,
// including across the moments its entry leaves the map (the last holder
// out removes it while others may be about to wait), and no entry is left
// behind. Before reference counting, deleting a VM removed its entry while
// waiters held the old mutex, so a newcomer got a second, free one.
func TestVMLockIsExclusiveAndForgottenWhenUnused(t *testing.T) {
	s := &Service{locks: map[string]*vmLockEntry{}}
	ids := []string{"a", "b", "c"}
	inside := map[string]*atomic.Int32{}
	for _, id := range ids {
		inside[id] = &atomic.Int32{}
	}
	var wg sync.WaitGroup
	var violations atomic.Int32
	for g := 0; g < 64; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				id := ids[(g+i)%len(ids)]
				l := s.lockVM(id)
				l.Lock()
				if inside[id].Add(1) != 1 {
					violations.Add(1)
				}
				if i%7 == 0 {
					for j := 0; j < 50; j++ { // hold it a little while others queue
						_ = j * j
					}
				}
				inside[id].Add(-1)
				l.Unlock()
			}
		}()
	}
	wg.Wait()
	if n := violations.Load(); n != 0 {
		t.Fatalf("%d times two goroutines held one VM's lock", n)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.locks) != 0 {
		t.Fatalf("lock entries left: %v", s.locks)
	}
}

// A caller that waits while the holder deletes the VM still excludes
// everyone who comes after it.
func TestVMLockWaiterKeepsEntryAlive(t *testing.T) {
	s := &Service{locks: map[string]*vmLockEntry{}}
	holder := s.lockVM("x")
	holder.Lock()
	waiting := make(chan struct{})
	got := make(chan struct{})
	waiter := s.lockVM("x")
	go func() {
		close(waiting)
		waiter.Lock()
		close(got)
	}()
	<-waiting
	for { // until the waiter has its reference
		s.mu.Lock()
		refs := s.locks["x"].refs
		s.mu.Unlock()
		if refs == 2 {
			break
		}
	}
	holder.Unlock() // e.g. the end of vm delete
	<-got
	late := s.lockVM("x")
	acquired := make(chan struct{})
	go func() { late.Lock(); close(acquired) }()
	select {
	case <-acquired:
		t.Fatal("a newcomer took the lock while the waiter held it")
	default:
	}
	waiter.Unlock()
	<-acquired
	late.Unlock()
	if len(s.locks) != 0 {
		t.Fatalf("entries left: %v", s.locks)
	}
}
