package storetest

import (
	"bytes"
	"sync"
)

// LogBuffer collects what a logger (or a process's output) writes from
// several goroutines, a Runner's and a server's at once, for a test to read
// back with String while they still run.
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p; it is safe to call from any goroutine.
func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// String returns everything written so far.
func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}
