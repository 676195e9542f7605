//go:build !linux

package bolt

// ReleaseMapped is a no-op where the pages of a mapped file cannot be
// handed back portably; see mapped_linux.go.
func (s *Store) ReleaseMapped() {}
