package bolt

import (
	"github.com/evindex/evindex/store"

	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"sync"

	bbolt "go.etcd.io/bbolt"

	migrations "github.com/evindex/evindex/migrations/bolt"
)

// codecSet holds the payload codecs of the dictionaries in the file. It is
// read once at open and grows only after a commit that added one (Apply
// is the only writer, and the file is locked to this process).
type codecSet struct {
	mu   sync.RWMutex
	byID map[uint64]*payloadCodec
}

// load reads every dictionary of the file.
func (cs *codecSet) load(tx *bbolt.Tx) error {
	byID := map[uint64]*payloadCodec{}
	b := tx.Bucket(migrations.BucketPayloadDicts)
	if b != nil {
		err := b.ForEach(func(k, v []byte) error {
			pc, err := decodeDictionary(k, v)
			if err != nil {
				return err
			}
			byID[pc.id] = pc
			return nil
		})
		if err != nil {
			return err
		}
	}
	cs.mu.Lock()
	cs.byID = byID
	cs.mu.Unlock()
	return nil
}

func decodeDictionary(k, v []byte) (*payloadCodec, error) {
	var frags []string
	if len(k) != 8 || json.Unmarshal(v, &frags) != nil {
		return nil, fmt.Errorf("%w: payload dictionary %x", store.ErrCorrupt, k)
	}
	d := store.PayloadDictionary{ID: binary.BigEndian.Uint64(k), Fragments: frags}
	if err := d.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", store.ErrCorrupt, err)
	}
	return newPayloadCodec(d.ID, d.Fragments), nil
}

// lookup returns the codec of a dictionary id; 0 is the one without
// fragments.
func (cs *codecSet) lookup(id uint64) (*payloadCodec, bool) {
	if id == 0 {
		return noFragments, true
	}
	cs.mu.RLock()
	pc, ok := cs.byID[id]
	cs.mu.RUnlock()
	return pc, ok
}

// add makes codecs a committed transaction wrote available to readers.
func (cs *codecSet) add(pcs map[uint64]*payloadCodec) {
	if len(pcs) == 0 {
		return
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	for id, pc := range pcs {
		cs.byID[id] = pc
	}
}

// codec returns the codec of a dictionary id in the file or written by
// this transaction.
func (w *writer) codec(id uint64) (*payloadCodec, bool) {
	if pc, ok := w.addedCodecs[id]; ok {
		return pc, true
	}
	return w.s.codecs.lookup(id)
}

// useDictionary makes d the dictionary of a source's events, writing it
// into the file when the file does not hold it yet. It returns ErrInvalid
// for a dictionary whose id the file holds with other fragments.
func (w *writer) useDictionary(info *sourceRecord, d *store.PayloadDictionary) error {
	if err := d.Validate(); err != nil {
		return err
	}
	if pc, ok := w.codec(d.ID); ok {
		if !slices.Equal(pc.fragments, d.Fragments) {
			return fmt.Errorf("%w: payload dictionary %d differs from the one the file holds under that id; a changed dictionary takes a new id", store.ErrInvalid, d.ID)
		}
	} else {
		v, err := json.Marshal(d.Fragments)
		if err != nil {
			return err
		}
		if err := w.put(w.tx.Bucket(migrations.BucketPayloadDicts), binary.BigEndian.AppendUint64(nil, d.ID), v); err != nil {
			return fmt.Errorf("payload dictionary %d: %w", d.ID, err)
		}
		if w.addedCodecs == nil {
			w.addedCodecs = map[uint64]*payloadCodec{}
		}
		w.addedCodecs[d.ID] = newPayloadCodec(d.ID, d.Fragments)
	}
	info.PayloadDictionary = d.ID
	return nil
}

// sourceCodec is the codec a source's events are packed with.
func (w *writer) sourceCodec(info *sourceRecord) (*payloadCodec, error) {
	pc, ok := w.codec(info.PayloadDictionary)
	if !ok {
		return nil, fmt.Errorf("source %s: %w: its payload dictionary %d is not in the file", info.Name, store.ErrCorrupt, info.PayloadDictionary)
	}
	return pc, nil
}
