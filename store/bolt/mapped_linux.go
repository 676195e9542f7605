//go:build linux

package bolt

import (
	"syscall"

	bbolt "go.etcd.io/bbolt"
)

// ReleaseMapped hands back the file's pages this process has read. bbolt
// reads through a shared, read-only memory map, and every page a scan or a
// B-tree descent touches stays in the process's resident set until the
// kernel wants the memory back: clean page-cache pages, yet they count as
// RSS, so a long export or a long ingestion would otherwise show most of
// the file as resident. The pages stay in the page cache; reading one
// again faults it back in with the same content (MADV_DONTNEED on a
// shared file mapping drops only page table entries). Best effort: an
// error leaves the pages resident.
func (s *Store) ReleaseMapped() {
	_ = s.db.View(func(tx *bbolt.Tx) error {
		// Inside a read transaction bbolt cannot remap the file, so the
		// mapping's address and the data size hold while we advise.
		data, size := s.db.Info().Data, tx.Size()
		if data == 0 || size <= 0 {
			return nil
		}
		_, _, _ = syscall.Syscall(syscall.SYS_MADVISE, data, uintptr(size), syscall.MADV_DONTNEED)
		return nil
	})
}
