package httpapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/rs/zerolog"
)

// statusWriter records what a handler wrote, for the request log and for
// the panic handler (which may only answer when nothing was sent yet).
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

// Flush lets streaming handlers push pages out as they go.
func (w *statusWriter) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection (write deadlines).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) started() bool { return w.status != 0 }

// logRequests logs every request at debug level. It logs the path only:
// query strings can carry values a user would not want in a log.
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		// The id an internal error message quotes is also in every
		// response, so a user can report it.
		w.Header().Set("X-Request-Id", middleware.GetReqID(r.Context()))
		start := time.Now()
		defer func() {
			took := time.Since(start)
			// The pattern, never the path: paths hold ids, which would
			// make one series per node.
			route := "none"
			if rc := chi.RouteContext(r.Context()); rc != nil && rc.RoutePattern() != "" {
				route = rc.RoutePattern()
			}
			status := sw.status
			if status == 0 {
				status = http.StatusOK // nothing written: net/http answers 200
			}
			s.requestSeconds.WithLabelValues(route, strconv.Itoa(status)).Observe(took.Seconds())
			if !s.log.Debug().Enabled() {
				return
			}
			s.log.Debug().Str("request_id", middleware.GetReqID(r.Context())).
				Str("method", r.Method).Str("path", r.URL.Path).Str("route", route).
				Int("status", status).Int64("bytes", sw.bytes).
				Float64("duration_ms", float64(took.Microseconds())/1000).Msg("http request")
		}()
		next.ServeHTTP(sw, r)
	})
}

// recoverPanics turns a handler panic into a logged 500 internal error.
// http.ErrAbortHandler passes through: it is how a streaming handler cuts
// a response it cannot complete.
func (s *Server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if err, ok := v.(error); ok && errors.Is(err, http.ErrAbortHandler) {
				panic(v)
			}
			id := middleware.GetReqID(r.Context())
			s.log.Error().Str("request_id", id).Str("path", r.URL.Path).
				Interface("panic", v).Msg("http handler panicked")
			if sw, ok := w.(*statusWriter); ok && sw.started() {
				panic(http.ErrAbortHandler)
			}
			writeJSON(w, http.StatusInternalServerError, errorBody(errorDetail{Code: "internal", Message: internalMessage(id)}))
		}()
		next.ServeHTTP(w, r)
	})
}

// limitBody refuses a body declared larger than maxBodyBytes at once and
// cuts an undeclared one there. No route reads a body, so without the first
// check a large one would only be drained and discarded.
func (s *Server) limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > maxBodyBytes {
			w.Header().Set("Connection", "close")
			s.writeError(w, r, &http.MaxBytesError{Limit: maxBodyBytes})
			return
		}
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
		}
		next.ServeHTTP(w, r)
	})
}

// requireToken demands the configured bearer token; without one it lets
// everything through.
func (s *Server) requireToken(next http.Handler) http.Handler {
	if len(s.token) == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.tokenOK(r.Header.Get("Authorization")) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="evindex"`)
			s.writeError(w, r, errUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// tokenOK reports whether an Authorization header carries the token. It
// compares SHA-256 digests in constant time, so neither the token's bytes
// nor its length can be learned from how long a refusal takes.
func (s *Server) tokenOK(header string) bool {
	scheme, tok, _ := strings.Cut(header, " ")
	got := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	ok := subtle.ConstantTimeCompare(got[:], s.tokenSum[:]) == 1
	return ok && strings.EqualFold(scheme, "Bearer")
}

// promLogger routes promhttp's errors to the server log.
type promLogger struct{ log *zerolog.Logger }

func (l promLogger) Println(v ...any) {
	l.log.Error().Msg(strings.TrimSpace(fmt.Sprintln(v...)))
}

// newStdLogger routes net/http's own messages (TLS handshakes, broken
// connections) to the server log at debug level.
func newStdLogger(l *zerolog.Logger) *log.Logger {
	return log.New(stdWriter{l}, "", 0)
}

type stdWriter struct{ log *zerolog.Logger }

func (w stdWriter) Write(p []byte) (int, error) {
	w.log.Debug().Msg(strings.TrimSpace(string(p)))
	return len(p), nil
}
