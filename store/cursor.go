package store

import "encoding/base64"

// Cursors are opaque to clients: a kind letter that names the list and
// the last row's key (in the bbolt key layout, which every backend uses
// for its cursors, so a cursor means the same row on any backend and any
// process), base64url encoded. The kind stops a cursor of one list being
// used on another.

// EncodeCursor makes the cursor of a list page from its kind and the last
// row's key.
func EncodeCursor(kind byte, key []byte) string {
	return base64.RawURLEncoding.EncodeToString(append([]byte{kind}, key...))
}

// DecodeCursor returns the key of a cursor of the list kind, nil for the
// empty cursor, or ErrCursorInvalid.
func DecodeCursor(kind byte, s string) ([]byte, error) {
	if s == "" {
		return nil, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) < 2 || b[0] != kind {
		return nil, ErrCursorInvalid
	}
	return b[1:], nil
}
