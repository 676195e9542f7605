package bolt

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// secureFiles checks the data directory and its database file at every
// open, not only when they are created: the file holds every record and
// the sources' state, and an earlier install, a restore (cp, tar) or an
// operator's chmod can leave them readable by others. A directory or file
// open to group or others is tightened to 0700 / 0600 (a read-only open,
// often by another user, only reports it when it cannot). A symlink in
// place of the file is refused: following it would make whatever it names
// (another file, someone else's path) the database, created 0600 or not.
func secureFiles(dir, path string, readOnly bool) error {
	if fi, err := os.Stat(dir); err == nil && fi.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(dir, fi.Mode().Perm()&0o700); err != nil && !readOnly {
			return fmt.Errorf("data dir %s is open to others (mode %04o) and cannot be tightened: %w", dir, fi.Mode().Perm(), err)
		}
	}
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("open %s: %w", path, err)
	case fi.Mode()&fs.ModeSymlink != 0:
		target, _ := os.Readlink(path)
		return fmt.Errorf("open %s: the database file is a symlink (to %s), which evindex does not follow: put the file itself in the data dir", path, target)
	case !fi.Mode().IsRegular():
		return fmt.Errorf("open %s: not a regular file (%s)", path, fi.Mode().Type())
	case fi.Mode().Perm()&0o077 != 0:
		if err := os.Chmod(path, 0o600); err != nil && !readOnly {
			return fmt.Errorf("open %s: the file is open to others (mode %04o) and cannot be tightened: %w", path, fi.Mode().Perm(), err)
		}
	}
	return nil
}
