package store

// EncodeCursor makes the opaque cursor of a list page: a kind letter that
// names the list and the last row's key (in the bbolt key layout, which
// every backend uses for its cursors, so a cursor means the same row on
// any backend and any process), base64url encoded.
func EncodeCursor(kind byte, key []byte) string { return encodeCursor(kind, key) }

// DecodeCursor returns the key of a cursor of the list kind, nil for the
// empty cursor, or ErrCursorInvalid.
func DecodeCursor(kind byte, s string) ([]byte, error) { return decodeCursor(kind, s) }
