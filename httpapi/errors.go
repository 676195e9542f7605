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

// ParamError is a query parameter a list rejected. The API answers it with
// 400 invalid_argument; the export command names the flag that set it.
type ParamError struct {
	// Param is the parameter's name (from_time), or empty when the store
	// refused the query as a whole without saying which parameter.
	Param   string
	Message string
}

func (e *ParamError) Error() string { return withParam(e.Param, e.Message) }

// withParam puts the parameter an error is about first, when it has one.
func withParam(param, msg string) string {
	if param == "" {
		return msg
	}
	return param + ": " + msg
}

// NotFoundError is a named thing that does not exist: a source, a node, a
// block (404 not_found).
type NotFoundError struct {
	// Param is the query parameter that named it (source), or empty when
	// the path did.
	Param   string
	Message string
}

func (e *NotFoundError) Error() string { return withParam(e.Param, e.Message) }

// InternalError is a failure that is not the caller's doing: a damaged
// file, a failed write. Err is the cause; the API logs it and shows the
// client only a request id, the export command shows it.
type InternalError struct{ Err error }

func (e *InternalError) Error() string { return e.Err.Error() }
func (e *InternalError) Unwrap() error { return e.Err }

// apiError is an error of the HTTP layer itself, with the status, code and
// message the client sees.
type apiError struct {
	status int
	code   string
	msg    string
}

func (e *apiError) Error() string { return e.code + ": " + e.msg }

// invalidParam is a 400 naming the offending parameter:
// "from_height: must be a non-negative integer".
func invalidParam(name, format string, args ...any) error {
	return &ParamError{Param: name, Message: fmt.Sprintf(format, args...)}
}

func notFound(format string, args ...any) error {
	return &NotFoundError{Message: fmt.Sprintf(format, args...)}
}

var errUnauthorized = &apiError{status: http.StatusUnauthorized, code: "unauthorized",
	msg: "missing or wrong bearer token (send Authorization: Bearer <token>)"}

// typed gives an error the kind its callers map: the store's sentinels
// become ParamError or NotFoundError, and anything unknown becomes an
// InternalError. Errors that are already typed, and those that mean the
// answer is unavailable right now (a locked file, an ended context), stay
// as they are.
func typed(err error) error {
	var (
		pe  *ParamError
		nf  *NotFoundError
		ie  *InternalError
		ae  *apiError
		mbe *http.MaxBytesError
	)
	switch {
	case err == nil, errors.As(err, &pe), errors.As(err, &nf), errors.As(err, &ie), errors.As(err, &ae), errors.As(err, &mbe):
		return err
	case errors.Is(err, store.ErrLocked), errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return err
	case errors.Is(err, store.ErrCursorInvalid), errors.Is(err, errCursorInvalid):
		return &ParamError{Param: "cursor", Message: "not a cursor of this list with these filters and this order (pass next_cursor unchanged, with the same filters and order)"}
	case errors.Is(err, store.ErrInvalid):
		return &ParamError{Message: err.Error()}
	case errors.Is(err, store.ErrNotFound):
		return &NotFoundError{Message: "not found"}
	}
	return &InternalError{Err: err}
}

// errorTable maps what is neither typed nor internal to what the client
// sees; the first match wins.
var errorTable = []struct {
	kind   error
	status int
	code   string
	msg    string
}{
	{store.ErrLocked, http.StatusServiceUnavailable, "unavailable", "the database is locked"},
	{context.DeadlineExceeded, http.StatusServiceUnavailable, "unavailable", "the request took too long"},
	{context.Canceled, http.StatusServiceUnavailable, "unavailable", "the request was canceled"},
}

// classify returns what the client sees for err, and whether it is an
// internal error that must be logged. This is the API's one mapping of
// error kinds to statuses.
func classify(err error) (status int, d errorDetail, internal bool) {
	err = typed(err)
	var (
		pe  *ParamError
		nf  *NotFoundError
		ae  *apiError
		mbe *http.MaxBytesError
	)
	switch {
	case errors.As(err, &pe):
		return http.StatusBadRequest, errorDetail{Code: "invalid_argument", Message: pe.Error(), Param: pe.Param}, false
	case errors.As(err, &nf):
		return http.StatusNotFound, errorDetail{Code: "not_found", Message: nf.Error(), Param: nf.Param}, false
	case errors.As(err, &ae):
		return ae.status, errorDetail{Code: ae.code, Message: ae.msg}, false
	case errors.As(err, &mbe):
		return http.StatusRequestEntityTooLarge, errorDetail{Code: "invalid_argument", Message: "request body too large"}, false
	}
	for _, e := range errorTable {
		if errors.Is(err, e.kind) {
			return e.status, errorDetail{Code: e.code, Message: e.msg}, false
		}
	}
	return http.StatusInternalServerError, errorDetail{Code: "internal"}, true
}

func internalMessage(requestID string) string {
	return fmt.Sprintf("internal error (request id %s)", requestID)
}

// writeError answers with the API's error body. Internal errors are logged
// with the request id and never shown to the client.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, detail, internal := classify(err)
	id := middleware.GetReqID(r.Context())
	switch {
	case internal:
		s.log.Error().Err(err).Str("request_id", id).Str("path", r.URL.Path).Msg("internal error")
		detail.Message = internalMessage(id)
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
	writeJSON(w, status, errorBody(detail))
}

// errorDetail is the error object of API.md. Param names the rejected
// parameter of an invalid_argument, so a client need not take the message
// apart to find it.
type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Param   string `json:"param,omitempty"`
}

func errorBody(d errorDetail) any {
	return struct {
		Error errorDetail `json:"error"`
	}{d}
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
