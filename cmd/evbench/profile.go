package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
)

// profileDir is where the child phases write their profiles (-profile);
// Run sets it before the first phase starts.
var profileDir string

// startProfile starts a CPU profile of this process into
// dir/<name>.cpu.pprof (nothing when dir is empty). The returned stop ends
// it and, with allocs, writes dir/<name>.alloc.pprof: every allocation
// sampled since the process started (go tool pprof -sample_index=alloc_space).
func startProfile(dir, name string, allocs bool) (stop func() error, err error) {
	if dir == "" {
		return func() error { return nil }, nil
	}
	cpu, err := os.Create(filepath.Join(dir, name+".cpu.pprof"))
	if err != nil {
		return nil, fmt.Errorf("-profile: %w", err)
	}
	if err := pprof.StartCPUProfile(cpu); err != nil {
		cpu.Close()
		return nil, fmt.Errorf("-profile: %w", err)
	}
	return func() error {
		pprof.StopCPUProfile()
		if err := cpu.Close(); err != nil {
			return fmt.Errorf("-profile: %w", err)
		}
		if !allocs {
			return nil
		}
		f, err := os.Create(filepath.Join(dir, name+".alloc.pprof"))
		if err != nil {
			return fmt.Errorf("-profile: %w", err)
		}
		if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
			f.Close()
			return fmt.Errorf("-profile: %w", err)
		}
		return f.Close()
	}, nil
}
