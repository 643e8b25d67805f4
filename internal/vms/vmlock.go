package vms

import "sync"

// vmLockEntry is one VM's lifecycle mutex and the number of callers that
// hold it or wait for it. The entry leaves Service.locks only when that
// count drops to zero, so a caller waiting on a VM being deleted never
// ends up holding a mutex that a newcomer no longer sees.
type vmLockEntry struct {
	mu   sync.Mutex
	refs int
}

// vmMutex is one caller's handle on a VM's lock: Lock, then Unlock, once.
type vmMutex struct {
	s  *Service
	id string
	e  *vmLockEntry
}

// vmLock returns a handle on the lock of one VM; it serialises that VM's
// lifecycle without blocking others.
func (s *Service) lockVM(id string) *vmMutex { return &vmMutex{s: s, id: id} }

// Lock takes a reference on the VM's entry (creating it) before waiting.
func (l *vmMutex) Lock() {
	l.s.mu.Lock()
	e, ok := l.s.locks[l.id]
	if !ok {
		e = &vmLockEntry{}
		l.s.locks[l.id] = e
	}
	e.refs++
	l.s.mu.Unlock()
	e.mu.Lock()
	l.e = e
}

// Unlock releases the mutex and the reference; the last one out removes
// the entry.
func (l *vmMutex) Unlock() {
	e := l.e
	if e == nil {
		panic("daemon: unlock of an unlocked VM lock")
	}
	l.e = nil
	e.mu.Unlock()
	l.s.mu.Lock()
	if e.refs--; e.refs == 0 {
		delete(l.s.locks, l.id)
	}
	l.s.mu.Unlock()
}
