package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"unsafe"
)

// openPTY opens a pseudo-terminal pair: what is written to tty can be
// read from pty.
func openPTY(t *testing.T) (pty, tty *os.File) {
	t.Helper()
	pty, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	var unlock int32
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, pty.Fd(), syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); errno != 0 {
		t.Fatalf("unlock pty: %v", errno)
	}
	var n uint32
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, pty.Fd(), syscall.TIOCGPTN, uintptr(unsafe.Pointer(&n))); errno != 0 {
		t.Fatalf("pty number: %v", errno)
	}
	tty, err = os.OpenFile("/dev/pts/"+strconv.FormatUint(uint64(n), 10), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	return pty, tty
}

// TestExportProgressOnATerminal runs an export with stderr on a terminal:
// the progress line ends with the rows and bytes written, and the output
// file is the same as without a terminal.
func TestExportProgressOnATerminal(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	fillRewards(t, data, 2500)
	pty, tty := openPTY(t)
	defer pty.Close()
	var screen bytes.Buffer
	read := make(chan struct{})
	go func() {
		defer close(read)
		// Ends with EIO once the terminal side is closed.
		_, _ = io.Copy(&screen, pty)
	}()

	out := filepath.Join(dir, "rewards.csv")
	var stdout bytes.Buffer
	err := run(context.Background(), []string{"export", "--data", data, "--format", "csv", "-o", out, "rewards"}, noEnv, &stdout, tty)
	tty.Close()
	<-read
	if err != nil {
		t.Fatal(err)
	}
	body, _ := os.ReadFile(out)
	lines := strings.Split(strings.TrimRight(screen.String(), "\r\n"), "\r")
	last := strings.TrimSpace(lines[len(lines)-1])
	want := "exported 2500 rows, " + strconv.FormatFloat(float64(len(body))/1e6, 'f', 1, 64) + " MB in "
	if !strings.HasPrefix(last, want) {
		t.Fatalf("last progress line %q, want it to start %q (screen %q)", last, want, screen.String())
	}
	if stdout.Len() != 0 {
		t.Fatalf("stdout got %q", stdout.String())
	}

	_, _, stderr := exportRun(t, noEnv, "--data", data, "--format", "csv", "-o", filepath.Join(dir, "again.csv"), "rewards")
	again, _ := os.ReadFile(filepath.Join(dir, "again.csv"))
	if stderr != "" || !bytes.Equal(again, body) {
		t.Fatalf("without a terminal: stderr %q, same file: %v", stderr, bytes.Equal(again, body))
	}
}

// TestExportNeverRemovesADevice fails an export whose -o names a named
// pipe: a failed export removes its partial file, but never something that
// is not a regular file (think -o /dev/stdout).
func TestExportNeverRemovesADevice(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	fillRewards(t, data, 10)
	fifo := filepath.Join(dir, "pipe")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("no named pipes here: %v", err)
	}
	// A reader, so that opening the pipe for writing does not block.
	r, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	code, _, stderr := exportRun(t, noEnv, "--data", data, "--from-time", "x", "-o", fifo, "rewards")
	if code != 2 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if _, err := os.Stat(fifo); err != nil {
		t.Fatalf("a failed export removed the pipe it wrote to: %v", err)
	}
}
