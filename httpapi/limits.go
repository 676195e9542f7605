package httpapi

import (
	"net/http"
	"strconv"
)

// Defaults for the caps on long responses (Config.MaxStreams, MaxBackups).
// An export stream holds a page of rows and an encoder's buffers for as long
// as its client takes to read them, whatever the client's speed; a backup
// holds a temporary copy of the file. Without a cap, a few hundred slow
// clients took the daemon past 700 MB.
const (
	DefaultMaxStreams = 16
	DefaultMaxBackups = 2
	// retryAfterSeconds is what a refused client is told to wait.
	retryAfterSeconds = 5
)

// slots is a counting semaphore that never waits: a request past the cap
// is refused at once rather than queued, since a queued client would hold
// its connection and goroutine anyway.
type slots chan struct{}

func newSlots(n, def int) slots {
	if n <= 0 {
		n = def
	}
	return make(slots, n)
}

func (s slots) tryAcquire() bool {
	select {
	case s <- struct{}{}:
		return true
	default:
		return false
	}
}

func (s slots) release() { <-s }

// limit runs next only while one of the slots is free; past the cap it
// answers 429 too_many_requests with Retry-After. what names the kind of
// response in the message. streaming, when set, says whether a request
// takes a slot at all (JSON pages are short and take none).
func (s *Server) limit(sl slots, what string, streaming func(*http.Request) bool) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if streaming != nil && !streaming(r) {
				next.ServeHTTP(w, r)
				return
			}
			if !sl.tryAcquire() {
				w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds))
				s.writeError(w, r, &apiError{status: http.StatusTooManyRequests, code: "too_many_requests",
					msg: "too many " + what + " at once (at most " + strconv.Itoa(cap(sl)) + "); retry later"})
				return
			}
			defer sl.release()
			next.ServeHTTP(w, r)
		})
	}
}

// isStream reports whether a list request asks for a streamed export
// (ndjson, csv, parquet) rather than a JSON page. A bad format parameter
// counts as not streaming: the handler answers it with a 400.
func isStream(r *http.Request) bool {
	return requestParams(r, "").format() != formatJSON
}
