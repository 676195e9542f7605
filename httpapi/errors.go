package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/go-chi/chi/v5/middleware"

	"github.com/evindex/evindex/store"
)

// apiError is an error with the status, code and message the client sees.
type apiError struct {
	status int
	code   string
	msg    string
}

func (e *apiError) Error() string { return e.code + ": " + e.msg }

// invalidParam is a 400 naming the offending parameter:
// "from_height: must be a non-negative integer".
func invalidParam(name, format string, args ...any) error {
	return &apiError{status: http.StatusBadRequest, code: "invalid_argument", msg: name + ": " + fmt.Sprintf(format, args...)}
}

func notFound(format string, args ...any) error {
	return &apiError{status: http.StatusNotFound, code: "not_found", msg: fmt.Sprintf(format, args...)}
}

var errUnauthorized = &apiError{status: http.StatusUnauthorized, code: "unauthorized",
	msg: "missing or wrong bearer token (send Authorization: Bearer <token>)"}

// errorTable maps the store's error kinds to what the client sees; the
// first match wins. Anything not here is internal: logged with the request
// id, and the client sees only the code and that id.
var errorTable = []struct {
	kind   error
	status int
	code   string
	msg    string // empty: the error's own text
}{
	{store.ErrNotFound, http.StatusNotFound, "not_found", "not found"},
	{store.ErrCursorInvalid, http.StatusBadRequest, "invalid_argument", "cursor: not a cursor of this list (pass next_cursor unchanged, with the same filters)"},
	{store.ErrInvalid, http.StatusBadRequest, "invalid_argument", ""},
	{store.ErrLocked, http.StatusServiceUnavailable, "unavailable", "the database is locked"},
	{context.DeadlineExceeded, http.StatusServiceUnavailable, "unavailable", "the request took too long"},
	{context.Canceled, http.StatusServiceUnavailable, "unavailable", "the request was canceled"},
}

// classify returns what the client sees for err, and whether it is an
// internal error that must be logged.
func classify(err error) (status int, code, msg string, internal bool) {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.status, ae.code, ae.msg, false
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return http.StatusRequestEntityTooLarge, "invalid_argument", "request body too large", false
	}
	for _, e := range errorTable {
		if errors.Is(err, e.kind) {
			msg := e.msg
			if msg == "" {
				msg = err.Error()
			}
			return e.status, e.code, msg, false
		}
	}
	return http.StatusInternalServerError, "internal", "", true
}

func internalMessage(requestID string) string {
	return fmt.Sprintf("internal error (request id %s)", requestID)
}

// writeError answers with the API's error body. Internal errors are logged
// with the request id and never shown to the client.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, code, msg, internal := classify(err)
	id := middleware.GetReqID(r.Context())
	switch {
	case internal:
		s.log.Error().Err(err).Str("request_id", id).Str("path", r.URL.Path).Msg("internal error")
		msg = internalMessage(id)
	case errors.Is(err, context.Canceled):
		s.log.Debug().Str("request_id", id).Msg("request canceled by the client")
	}
	if sw, ok := w.(*statusWriter); ok && sw.started() {
		// The status line is gone: cut the response so the client sees
		// an incomplete transfer rather than a short but valid-looking one.
		if !internal {
			s.log.Warn().Err(err).Str("request_id", id).Str("path", r.URL.Path).Msg("response cut short")
		}
		panic(http.ErrAbortHandler)
	}
	writeJSON(w, status, errorBody(code, msg))
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func errorBody(code, msg string) any {
	return struct {
		Error errorDetail `json:"error"`
	}{errorDetail{code, msg}}
}

// writeJSON writes v as the whole response.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"code":"internal","message":"internal error"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
