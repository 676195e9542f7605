//go:build !linux

package main

// mappedFile is a no-op where the pages of a mapped file cannot be handed
// back portably; see mapped_linux.go.
type mappedFile struct{}

func mappingsOf(string) *mappedFile { return &mappedFile{} }

func (*mappedFile) release() {}
