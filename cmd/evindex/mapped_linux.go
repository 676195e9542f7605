//go:build linux

package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// mappedFile is where this process maps a file, so that a long scan of a
// read-only store can hand back the pages it has read. bbolt reads through
// a shared, read-only memory map: every page a scan touches stays in the
// process's resident set until the kernel wants the memory back. Those are
// clean page-cache pages, yet they count as RSS, and a million-row export
// would otherwise end with most of the file in it.
//
// Use it only on a store opened read-only: a writable store remaps the
// file as it grows, and advice given to a stale range could land on
// unrelated memory.
type mappedFile struct {
	ranges [][2]uintptr // [start, end) of each mapping
}

// mappingsOf finds path's mappings in /proc/self/maps by device and inode.
// A file it cannot find yields an empty set: releasing is best effort.
func mappingsOf(path string) *mappedFile {
	m := &mappedFile{}
	fi, err := os.Stat(path)
	if err != nil {
		return m
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return m
	}
	raw, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return m
	}
	base := filepath.Base(path)
	// Lines read: start-end perms offset major:minor inode path
	for line := range strings.Lines(string(raw)) {
		f := strings.Fields(line)
		if len(f) < 6 || filepath.Base(strings.Join(f[5:], " ")) != base {
			continue
		}
		if ino, err := strconv.ParseUint(f[4], 10, 64); err != nil || ino != st.Ino {
			continue
		}
		if !sameDevice(f[3], uint64(st.Dev)) {
			continue
		}
		lo, hi, ok := strings.Cut(f[0], "-")
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if !ok || err1 != nil || err2 != nil || end <= start {
			continue
		}
		m.ranges = append(m.ranges, [2]uintptr{uintptr(start), uintptr(end)})
	}
	return m
}

// sameDevice compares /proc/self/maps' "major:minor" (hex) with a stat
// device number in the kernel's encoding.
func sameDevice(field string, dev uint64) bool {
	ma, mi, ok := strings.Cut(field, ":")
	major, err1 := strconv.ParseUint(ma, 16, 64)
	minor, err2 := strconv.ParseUint(mi, 16, 64)
	if !ok || err1 != nil || err2 != nil {
		return false
	}
	return major == (dev>>8)&0xfff|(dev>>32)&^0xfff && minor == dev&0xff|(dev>>12)&^0xff
}

// release drops the mapped pages from the process's resident set. The
// pages stay in the page cache; a later read of them faults them back in
// with the same content, since the mapping is of the file itself.
func (m *mappedFile) release() {
	for _, r := range m.ranges {
		// MADV_DONTNEED on a shared file mapping discards nothing but the
		// page table entries. An error only means the pages stay resident.
		_, _, _ = syscall.Syscall(syscall.SYS_MADVISE, r[0], r[1]-r[0], syscall.MADV_DONTNEED)
	}
}
