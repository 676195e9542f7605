package spacemesh

import (
	"context"
	"encoding/hex"
	"fmt"
	"strings"

	smv1 "github.com/spacemeshos/api/release/go/spacemesh/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/evindex/evindex/store"
)

// layersPerQuery bounds one LayersQuery: each layer carries its block's
// transactions.
const layersPerQuery = 100

// readLayers returns the layers of [from, to] as blocks, through v1
// MeshService.LayersQuery, which every node serves.
func (r *run) readLayers(ctx context.Context, from, to uint64) ([]store.Block, error) {
	out := make([]store.Block, 0, to-from+1)
	for start := from; start <= to; start += layersPerQuery {
		end := min(to, start+layersPerQuery-1)
		layers, err := r.queryLayers(ctx, start, end)
		if err != nil {
			return nil, err
		}
		for _, l := range layers {
			n := uint64(l.GetNumber().GetNumber())
			if n < start || n > end {
				continue
			}
			out = append(out, store.Block{
				Height:    n,
				BlockID:   hex.EncodeToString(l.GetHash()),
				BlockTime: r.net.layerTime(n),
				Status:    layerStatus(l.GetStatus()),
			})
		}
	}
	return out, nil
}

// layerStatus is the API's name for a layer status: "approved",
// "confirmed", "applied" or "unspecified".
func layerStatus(s smv1.Layer_LayerStatus) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "LAYER_STATUS_"))
}

// queryLayers reads [start, end]. go-spacemesh fails the whole query when
// one layer cannot be read (a layer it never stored, such as some before
// the effective genesis), so on such an error the range is read layer by
// layer and the unreadable ones are left out: a missing block does not
// hold up the rewards.
func (r *run) queryLayers(ctx context.Context, start, end uint64) ([]*smv1.Layer, error) {
	query := func(from, to uint64) ([]*smv1.Layer, error) {
		cctx, cancel := r.call(ctx)
		defer cancel()
		res, err := r.mesh.LayersQuery(cctx, &smv1.LayersQueryRequest{
			StartLayer: &smv1.LayerNumber{Number: uint32(from)},
			EndLayer:   &smv1.LayerNumber{Number: uint32(to)},
		})
		if err != nil {
			return nil, fmt.Errorf("layers %d..%d: %w", from, to, err)
		}
		return res.GetLayer(), nil
	}
	layers, err := query(start, end)
	if err == nil || !layerMissing(err) {
		return layers, err
	}
	layers = layers[:0]
	skipped := 0
	for n := start; n <= end; n++ {
		l, err := query(n, n)
		switch {
		case err == nil:
			layers = append(layers, l...)
		case layerMissing(err):
			skipped++
		default:
			return nil, err
		}
	}
	if skipped > 0 {
		r.log.Warn().Uint64("from", start).Uint64("to", end).Int("skipped", skipped).Msg("the node could not read some layers; they are not stored as blocks")
	}
	return layers, nil
}

// layerMissing tells a layer the node cannot read from a node that is
// unreachable or overloaded, which must fail the run instead.
func layerMissing(err error) bool {
	switch status.Code(err) {
	case codes.Internal, codes.NotFound, codes.InvalidArgument, codes.OutOfRange:
		return true
	}
	return false
}
