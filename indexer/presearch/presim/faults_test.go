package presim_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"
)

func TestInjectedFaults(t *testing.T) {
	sim, _, srv := newSim(t)
	get := func(ctx context.Context) (int, []byte, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/api/nodes/status/"+sim.APIKey(), nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, b, err
	}
	ok := func(t *testing.T) {
		t.Helper()
		code, b, err := get(context.Background())
		if err != nil || code != 200 || !json.Valid(b) {
			t.Fatalf("after the fault: %d %s %v", code, b, err)
		}
	}

	t.Run("FailNext", func(t *testing.T) {
		sim.FailNext(2, http.StatusServiceUnavailable)
		for range 2 {
			if code, _, _ := get(context.Background()); code != 503 {
				t.Fatalf("status %d, want 503", code)
			}
		}
		ok(t)
	})
	t.Run("GarbageNext", func(t *testing.T) {
		sim.GarbageNext(5)
		for i := range 5 {
			code, b, _ := get(context.Background())
			var v struct {
				Success bool                       `json:"success"`
				Nodes   map[string]json.RawMessage `json:"nodes"`
			}
			if code != 200 || (json.Unmarshal(b, &v) == nil && len(v.Nodes) == 3) {
				t.Fatalf("garbage %d: %d %s reads as a good answer", i, code, b)
			}
		}
		ok(t)
	})
	t.Run("SlowNext", func(t *testing.T) {
		before, _ := sim.Served()
		sim.SlowNext(1, time.Hour)
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		if _, _, err := get(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("slow request: %v, want the client's deadline", err)
		}
		ok(t)
		if after, _ := sim.Served(); after != before+1 {
			t.Fatalf("served %d requests, want only the one after the slow one", after-before)
		}
	})
	if n := sim.Injected(); n != 8 {
		t.Fatalf("%d faults injected, want 8", n)
	}
}
