package main

import (
	"bufio"
	"os"
	"strconv"
	"strings"
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
