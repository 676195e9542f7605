package store

import "fmt"

// PayloadDictionary lists text fragments that a source's event payloads
// repeat (the nesting and field names of its encoding), so that a backend
// that packs payloads can store each occurrence as a short code. The
// source owns its dictionary and hands it to the store in a batch; the
// store keeps it with the data, so a file decodes without the source.
type PayloadDictionary struct {
	// ID names this list of fragments for good. A store that holds a
	// dictionary refuses the same ID with other fragments (ErrInvalid):
	// a changed list takes a new ID. 0 is reserved for "no fragments".
	ID uint64
	// Fragments, most frequent first: the bbolt backend writes the first
	// MaxShortFragments in one byte and the rest in two. Each is at least
	// two bytes long (shorter ones save nothing); at most MaxFragments.
	Fragments []string
}

// Limits of a PayloadDictionary, set by the codes of the bbolt backend's
// packed format (one-byte codes 0x02..0x1e, two-byte codes below 0xc0).
const (
	MaxShortFragments = 29
	MaxFragments      = MaxShortFragments + 192
)

// Validate reports what makes d unusable, naming the fragment.
func (d *PayloadDictionary) Validate() error {
	if d.ID == 0 {
		return fmt.Errorf("%w: payload dictionary: id 0 is reserved", ErrInvalid)
	}
	if len(d.Fragments) > MaxFragments {
		return fmt.Errorf("%w: payload dictionary %d: %d fragments, at most %d", ErrInvalid, d.ID, len(d.Fragments), MaxFragments)
	}
	for i, f := range d.Fragments {
		if len(f) < 2 {
			return fmt.Errorf("%w: payload dictionary %d: fragments[%d]: %q is shorter than 2 bytes", ErrInvalid, d.ID, i, f)
		}
	}
	return nil
}
