package presearch

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/evindex/evindex/indexer"
	"github.com/evindex/evindex/indexer/presearch/presim"
)

// The demo's Presearch clock starts a day behind the demo's first start
// and runs at 60x, so an hourly earnings window closes every real minute
// until it has caught up with the real time (24 minutes), and with it
// after that: no window ends in the future.
const (
	demoSpeed   = 60
	demoCatchUp = 24 * time.Hour
)

// SourceKind registers presearch sources with the command line.
var SourceKind = indexer.SourceKind{
	Name:  Kind,
	Title: "Presearch",
	NewConfig: func(name string) indexer.SourceConfig {
		c := DefaultConfig()
		c.Name = name
		return &c
	},
	// Seconds: the last hourly window plus its delay.
	LagThreshold: 7200,
	// As long as the lag threshold: windows are hourly, and a window
	// is read at the first poll the rate limit allows after it ends.
	StallThreshold: 2 * time.Hour,
	Simulator: indexer.Simulator{
		About:   "the Presearch node status API (--block-interval: simulated time per real second while it catches up with the real time from --history ago)",
		History: "hours",
		Flags: func(fs *flag.FlagSet) func(context.Context, indexer.SimOptions) (*indexer.Simulation, error) {
			apiKey := fs.String("api-key", presim.DefaultAPIKey, "the API key the simulator accepts")
			return func(ctx context.Context, o indexer.SimOptions) (*indexer.Simulation, error) {
				cfg := presim.Config{APIKey: *apiKey, Seed: o.Seed}
				if o.History > 0 {
					cfg.History = time.Duration(o.History) * time.Hour
				}
				if o.Interval > 0 {
					cfg.Speed = float64(o.Interval) / float64(time.Second)
				}
				if cfg.Speed > 1 {
					// A fast clock catches up from the start of the
					// history; from now it would run into the future.
					cfg.Start = time.Now().Add(-cfg.History)
					if cfg.History == 0 {
						cfg.Start = time.Now().Add(-presim.DefaultHistory)
					}
				}
				srv, err := presim.Start(ctx, o.Listen, cfg)
				if err != nil {
					return nil, fmt.Errorf("presearch simulator: %w", err)
				}
				return &indexer.Simulation{
					Upstream: "presearch node status API",
					Addr:     fmt.Sprintf("%s (key %s), nodes: %v", srv.URL, srv.Sim.APIKey(), srv.Sim.NodeKeys()),
					Close:    func() { _ = srv.Close() },
				}, nil
			}
		},
		Demo: startDemo,
	},
}

// startDemo runs Presearch time fast from the demo's first start, with
// nodes born a month before it, so a restart continues the same history.
// The source polls status at half the API's limit: at 60x the limiter's
// safety margin is a few real milliseconds, and a loaded machine's request
// latency would otherwise earn the demo a 429.
func startDemo(ctx context.Context, started time.Time) (*indexer.Simulation, error) {
	srv, err := presim.Start(ctx, "127.0.0.1:0", presim.Config{
		Speed:   demoSpeed,
		Start:   started.Add(-demoCatchUp + time.Since(started)*demoSpeed),
		Genesis: started.Add(-30 * 24 * time.Hour).Truncate(time.Minute),
	})
	if err != nil {
		return nil, fmt.Errorf("presearch simulator: %w", err)
	}
	src := DefaultConfig()
	src.Name, src.BaseURL, src.APIKey = "presearch-demo", srv.URL, srv.Sim.APIKey()
	src.StatusInterval, src.BackfillDays = 30*time.Second, 2
	src.Now, src.Sleep = srv.Sim.Now, srv.Sim.Sleep
	return &indexer.Simulation{Upstream: "presearch API",
		Addr: fmt.Sprintf("%s (simulated time runs %dx)", srv.URL, demoSpeed),
		Name: src.Name, Config: &src, Close: func() { _ = srv.Close() }}, nil
}
