package httpapi

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
)

// errCursorInvalid is a cursor that another list, other filters or the
// other order handed out. The store's cursor is only the last key served:
// resumed under another query it would silently end the list early or
// skip rows, so the API seals each next_cursor to the query it pages.
var errCursorInvalid = errors.New("cursor of another query")

// cursorSeal binds store cursors to one query: a sealed cursor is the
// store's, a dot, and a digest of the list's name and its query with every
// filter and the order (never the cursor or the limit: a client may change
// the page size, or the format, between pages).
type cursorSeal string

// sealFor is the seal of a list's query; query is the store's query value
// with its Cursor and Limit unset.
func sealFor(list string, query any) cursorSeal {
	b, err := json.Marshal(query)
	if err != nil {
		// Query types are plain structs; this cannot fail, and an
		// empty seal still refuses every other list's cursors.
		b = nil
	}
	sum := sha256.Sum256(append([]byte(list+"\x00"), b...))
	return cursorSeal(base64.RawURLEncoding.EncodeToString(sum[:9]))
}

// seal is the cursor the client sees for the store's next.
func (s cursorSeal) seal(next string) string {
	if next == "" {
		return ""
	}
	return next + "." + string(s)
}

// open is the store's cursor inside a client's, or errCursorInvalid.
func (s cursorSeal) open(cursor string) (string, error) {
	if cursor == "" {
		return "", nil
	}
	inner, seal, ok := strings.Cut(cursor, ".")
	if !ok || seal != string(s) || inner == "" {
		return "", errCursorInvalid
	}
	return inner, nil
}
