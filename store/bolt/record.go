package bolt

import (
	"bytes"
	"fmt"

	bbolt "go.etcd.io/bbolt"
)

// WriteOp is one write an Apply transaction made: a Put of Key=Value into
// the top-level bucket named Bucket, or a Delete of Key.
type WriteOp struct {
	Bucket string
	Key    []byte
	Value  []byte
	Delete bool
}

// writeLog gathers one transaction's writes for Options.RecordWrites. It
// names a bucket by looking its handle up among the transaction's
// top-level buckets (tx.Bucket returns the same handle within a
// transaction).
type writeLog struct {
	names map[*bbolt.Bucket]string
	ops   []WriteOp
}

func newWriteLog(tx *bbolt.Tx) *writeLog {
	l := &writeLog{names: map[*bbolt.Bucket]string{}}
	_ = tx.ForEach(func(name []byte, b *bbolt.Bucket) error {
		l.names[tx.Bucket(name)] = string(name)
		return nil
	})
	return l
}

func (l *writeLog) add(b *bbolt.Bucket, k, v []byte, del bool) error {
	name, ok := l.names[b]
	if !ok {
		return fmt.Errorf("record writes: a write to a bucket that is not a top-level one")
	}
	l.ops = append(l.ops, WriteOp{Bucket: name, Key: bytes.Clone(k), Value: bytes.Clone(v), Delete: del})
	return nil
}

// put is every Put of Apply: k=v into b, noted in the write log when one
// is kept (Options.RecordWrites; off, it is one comparison).
func (w *writer) put(b *bbolt.Bucket, k, v []byte) error {
	if w.log != nil {
		if err := w.log.add(b, k, v, false); err != nil {
			return err
		}
	}
	return b.Put(k, v)
}

// del is every Delete of Apply, noted like put.
func (w *writer) del(b *bbolt.Bucket, k []byte) error {
	if w.log != nil {
		if err := w.log.add(b, k, nil, true); err != nil {
			return err
		}
	}
	return b.Delete(k)
}
