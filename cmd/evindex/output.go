package main

import (
	"errors"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// outputFile is a file a command writes under a temporary name beside its
// final one and renames into place only when complete: a failed export or
// backup leaves no half file, and an earlier file of the name stays whole.
// A path naming something that is not a regular file (/dev/stdout, a pipe)
// is written in place, since it cannot be renamed over.
type outputFile struct {
	f         *os.File
	path, tmp string
	done      bool
}

// createOutput opens the output for path, readable by its owner only:
// exports and backups hold what the data dir keeps private.
func createOutput(path string) (*outputFile, error) {
	if fi, err := os.Stat(path); err == nil && !fi.Mode().IsRegular() {
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			return nil, err
		}
		return &outputFile{f: f, path: path}, nil
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".partial-*")
	if err != nil {
		return nil, err
	}
	return &outputFile{f: f, path: path, tmp: f.Name()}, nil
}

// commit makes the output durable and gives it its name.
func (o *outputFile) commit() error {
	o.done = true
	if o.tmp == "" {
		return o.f.Close()
	}
	err := o.f.Sync()
	if cerr := o.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(o.tmp, o.path)
	}
	if err != nil {
		os.Remove(o.tmp)
		return fmt.Errorf("write %s: %w", o.path, err)
	}
	return nil
}

// abandon drops an output that was not committed; after commit it does
// nothing.
func (o *outputFile) abandon() {
	if o.done {
		return
	}
	o.done = true
	o.f.Close()
	if o.tmp != "" {
		os.Remove(o.tmp)
	}
}

// apiURL is the URL of path on the evindex API at base, as given to a
// command's --url. A base is scheme://host[:port] with an optional path
// prefix (a reverse proxy's); a query or fragment would be silently
// dropped or mangled, so it is refused.
func apiURL(cmd, base, path string) (*url.URL, error) {
	b, err := url.Parse(base)
	switch {
	case err != nil || (b.Scheme != "http" && b.Scheme != "https") || b.Host == "":
		return nil, usagef("%s: --url %q: want http://host:port", cmd, base)
	case b.RawQuery != "" || b.ForceQuery || b.Fragment != "" || strings.Contains(base, "#"):
		return nil, usagef("%s: --url %q: a base URL has no query or fragment: want http://host:port", cmd, base)
	case b.User != nil:
		return nil, usagef("%s: --url %q: give the token with --token or EVINDEX_TOKEN, not in the URL", cmd, base)
	}
	b.Path = strings.TrimRight(b.Path, "/") + path
	b.RawPath = ""
	return b, nil
}

// expectType refuses an answer that is not what evindex's API sends for
// the request (a dashboard page, a proxy's error page): it would otherwise
// be written out as if it were the data.
func expectType(cmd string, u *url.URL, resp *http.Response, want string) error {
	got := resp.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(got)
	wantMT, _, _ := mime.ParseMediaType(want)
	if err != nil || mt != wantMT {
		if got == "" {
			got = "no content type"
		}
		return fmt.Errorf("%s: %s answered %s, not %s: is --url the evindex API?", cmd, u.Redacted(), got, wantMT)
	}
	return nil
}
