package main

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// memory is this process's resident set from /proc/self/status, in KiB.
// HWM is the peak (VmHWM); Anon and File split the current RSS into heap
// and mapped file pages (bbolt's and SQLite's memory maps count as File).
type memory struct {
	HWM, Anon, File int64
}

func readMemory() memory {
	var m memory
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return m
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			continue
		}
		switch name {
		case "VmHWM":
			m.HWM = v
		case "RssAnon":
			m.Anon = v
		case "RssFile":
			m.File = v
		}
	}
	return m
}

// cpuSeconds is the user and system CPU time this process used so far.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// anonPeak samples the heap part of the resident set (RssAnon) until stop
// is called, which returns the largest sample in KiB. VmHWM has no such
// split: it also counts the database's mapped pages.
func anonPeak(every time.Duration) (stop func() int64) {
	done := make(chan struct{})
	result := make(chan int64, 1)
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		peak := readMemory().Anon
		for {
			select {
			case <-done:
				result <- max(peak, readMemory().Anon)
				return
			case <-t.C:
				peak = max(peak, readMemory().Anon)
			}
		}
	}()
	return func() int64 {
		close(done)
		return <-result
	}
}
