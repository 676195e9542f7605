package flow

import (
	"errors"
	"fmt"

	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// messageCodec is gRPC's protobuf codec with one change in how a large
// response is read. gRPC receives a message as the HTTP/2 frames it came
// in (16 KiB each) and its codec copies them into one buffer before
// decoding: a block of 100,000 events, 54 MB on the wire, was in memory
// three times at once (the frames, the copy, the decoded message). This
// codec decodes the frames where they are, one field at a time, merged
// into the message: protobuf defines a message's encoding as the
// concatenation of its fields' and decoding it as merging them, so the
// result is the same message. A field longer than streamFieldBytes that
// holds a message (a response's events, a range's results) is read the
// same way, field by field, so no copy is ever longer than one such
// field.
type messageCodec struct{}

// streamFieldBytes is the size above which a response, or a message
// field in it, is decoded field by field. Below it one copy costs
// nothing worth saving.
const streamFieldBytes = 1 << 20

var _ encoding.CodecV2 = messageCodec{}

// Name is the registered protobuf codec's: the requests carry the same
// content-subtype, so every server reads them as before.
func (messageCodec) Name() string { return grpcproto.Name }

func (messageCodec) Marshal(v any) (mem.BufferSlice, error) {
	return encoding.GetCodecV2(grpcproto.Name).Marshal(v)
}

func (messageCodec) Unmarshal(data mem.BufferSlice, v any) error {
	m := messageOf(v)
	if m == nil || len(data) == 1 || data.Len() < streamFieldBytes {
		return encoding.GetCodecV2(grpcproto.Name).Unmarshal(data, v)
	}
	return unmarshalFrames(data, m)
}

// unmarshalFrames decodes m from the buffers data, field by field.
func unmarshalFrames(data mem.BufferSlice, m proto.Message) error {
	proto.Reset(m)
	r := &frameReader{data: data}
	if err := mergeFields(r, data.Len(), m.ProtoReflect(), nil); err != nil {
		return fmt.Errorf("decode %s: %w", m.ProtoReflect().Descriptor().FullName(), err)
	}
	return nil
}

// mergeFields reads n bytes of m's encoding from r and merges them into
// m, a field at a time; scratch is reused for the fields' bytes.
func mergeFields(r *frameReader, n int, m protoreflect.Message, scratch []byte) error {
	end := r.read + n
	for r.read < end {
		tag, err := r.varint()
		if err != nil {
			return err
		}
		num, typ := protowire.DecodeTag(tag)
		if num < protowire.MinValidNumber {
			return errors.New("invalid field number")
		}
		scratch = protowire.AppendVarint(scratch[:0], tag)
		switch typ {
		case protowire.VarintType:
			v, err := r.varint()
			if err != nil {
				return err
			}
			scratch = protowire.AppendVarint(scratch, v)
		case protowire.Fixed32Type:
			if scratch, err = r.append(scratch, 4); err != nil {
				return err
			}
		case protowire.Fixed64Type:
			if scratch, err = r.append(scratch, 8); err != nil {
				return err
			}
		case protowire.BytesType:
			size, err := r.varint()
			if err != nil {
				return err
			}
			if size > uint64(end-r.read) {
				return errTruncated
			}
			fd := m.Descriptor().Fields().ByNumber(num)
			if size > streamFieldBytes && fd != nil && fd.Kind() == protoreflect.MessageKind && !fd.IsMap() {
				if err := mergeField(r, int(size), m, fd, scratch); err != nil {
					return fmt.Errorf("%s: %w", fd.Name(), err)
				}
				continue
			}
			scratch = protowire.AppendVarint(scratch, size)
			if scratch, err = r.append(scratch, int(size)); err != nil {
				return err
			}
		default:
			// proto3 messages, as the access API's are, hold no groups.
			return fmt.Errorf("field %d: wire type %d", num, typ)
		}
		if err := (proto.UnmarshalOptions{Merge: true}).Unmarshal(scratch, m.Interface()); err != nil {
			return err
		}
	}
	if r.read != end {
		return errTruncated
	}
	return nil
}

// mergeField merges a large message field's value, n bytes of r, into m:
// into a new element of a repeated field, or into a singular field's
// message (merging, as a repeated occurrence of it does).
func mergeField(r *frameReader, n int, m protoreflect.Message, fd protoreflect.FieldDescriptor, scratch []byte) error {
	if fd.IsList() {
		list := m.Mutable(fd).List()
		elem := list.NewElement()
		list.Append(elem)
		return mergeFields(r, n, elem.Message(), scratch)
	}
	return mergeFields(r, n, m.Mutable(fd).Message(), scratch)
}

var errTruncated = errors.New("message truncated")

// messageOf is v as a protobuf message: the access API's Go types are
// generated in the older API, which protoadapt wraps.
func messageOf(v any) proto.Message {
	switch v := v.(type) {
	case protoadapt.MessageV2:
		return v
	case protoadapt.MessageV1:
		return protoadapt.MessageV2Of(v)
	}
	return nil
}

// frameReader reads a message across the buffers it arrived in, without
// taking or dropping references: gRPC frees them after Unmarshal.
type frameReader struct {
	data mem.BufferSlice
	buf  []byte // the rest of the current buffer
	next int    // index of the next buffer in data
	read int    // bytes read so far
}

func (r *frameReader) fill() bool {
	for len(r.buf) == 0 {
		if r.next >= len(r.data) {
			return false
		}
		r.buf = r.data[r.next].ReadOnlyData()
		r.next++
	}
	return true
}

func (r *frameReader) varint() (uint64, error) {
	var v uint64
	for shift := uint(0); shift < 64; shift += 7 {
		if !r.fill() {
			return 0, errTruncated
		}
		b := r.buf[0]
		r.buf = r.buf[1:]
		r.read++
		v |= uint64(b&0x7f) << shift
		if b < 0x80 {
			return v, nil
		}
	}
	return 0, errors.New("varint overflows 64 bits")
}

// append appends the next n bytes to dst.
func (r *frameReader) append(dst []byte, n int) ([]byte, error) {
	for n > 0 {
		if !r.fill() {
			return dst, errTruncated
		}
		k := min(n, len(r.buf))
		dst = append(dst, r.buf[:k]...)
		r.buf, n, r.read = r.buf[k:], n-k, r.read+k
	}
	return dst, nil
}
