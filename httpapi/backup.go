package httpapi

import (
	"fmt"
	"net/http"
	"time"

	"github.com/evindex/evindex/store"
)

// errNoBackup answers a backup request on a store that cannot copy itself.
var errNoBackup = &apiError{status: http.StatusNotImplemented, code: "not_implemented",
	msg: "this store backend has no hot backup; back the database up with its own tools"}

func (s *Server) handleBackup(w http.ResponseWriter, r *http.Request) error {
	b, ok := s.st.(store.Backuper)
	if !ok {
		return errNoBackup
	}
	name := fmt.Sprintf("evindex-%s.db", s.now().UTC().Format("20060102T150405Z"))
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", name))
	h.Set("Cache-Control", "no-store")
	if r.Method == http.MethodHead {
		// The headers are the whole answer: copying the file to learn
		// nothing would cost a full backup.
		w.WriteHeader(http.StatusOK)
		return nil
	}
	rc := http.NewResponseController(w)
	n, err := b.Backup(r.Context(), &deadlineWriter{w: w, rc: rc})
	if err != nil {
		h.Del("Content-Disposition")
		return err
	}
	s.log.Info().Int64("bytes", n).Msg("backup served")
	return nil
}

// deadlineWriter pushes the connection's write deadline forward on every
// write, so a large copy is bounded per chunk rather than as a whole.
type deadlineWriter struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func (d *deadlineWriter) Write(p []byte) (int, error) {
	_ = d.rc.SetWriteDeadline(time.Now().Add(writeTimeout))
	return d.w.Write(p)
}
