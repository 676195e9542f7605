package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/evindex/evindex/indexer"
	"github.com/evindex/evindex/store"
	"github.com/evindex/evindex/store/storetest"
)

// TestSourceKindsAreTheRegistry lists the registry, then adds a kind to it
// as a new source package would (one line): the config file accepts its
// keys and names it in errors, `sim --help` lists it, `sim KIND` serves
// it, and `evindex demo` indexes its simulator next to the others.
func TestSourceKindsAreTheRegistry(t *testing.T) {
	var names []string
	for _, k := range sourceKinds {
		names = append(names, k.Name)
	}
	if !slices.Equal(names, []string{"flow", "spacemesh", "presearch"}) {
		t.Fatalf("registry lists %v", names)
	}
	_, err := ParseConfig([]byte("sources:\n  - {name: a, kind: flwo}\n"), noEnv)
	if want := `sources[0].kind: "flwo" is not a source kind (flow, spacemesh, presearch) (did you mean flow?)`; err == nil || err.Error() != want {
		t.Fatalf("unknown kind: %v, want %s", err, want)
	}

	saved := sourceKinds
	t.Cleanup(func() { sourceKinds = saved })
	sourceKinds = append(slices.Clip(saved), echoKind)

	t.Run("ConfigErrors", func(t *testing.T) {
		cases := []struct{ name, yaml, err string }{
			{"UnknownKind", "sources:\n  - {name: a, kind: flwo}\n", `sources[0].kind: "flwo" is not a source kind (flow, spacemesh, presearch, echo) (did you mean flow?)`},
			{"NoKind", "sources:\n  - {name: a}\n", "sources[0].kind: required (flow, spacemesh, presearch, echo)"},
			{"KeyOfAnotherKind", "sources:\n  - {name: a, kind: echo, endpoint: x}\n", "sources[0].endpoint: not a key of a echo source (line 2)"},
			{"AnotherKindsKey", "sources:\n  - {name: a, kind: flow, greeting: x}\n", "sources[0].greeting: not a key of a flow source (line 2)"},
			{"KindValidates", "sources:\n  - {name: z, kind: flow, endpoint: 127.0.0.1:1}\n  - {name: a, kind: echo}\n", "sources[1].greeting: required"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				cfg, err := ParseConfig([]byte(c.yaml), noEnv)
				if err == nil {
					err = cfg.Validate()
				}
				if err == nil || err.Error() != c.err {
					t.Fatalf("got %v, want %s", err, c.err)
				}
			})
		}
		cfg, err := ParseConfig([]byte("sources:\n  - {name: a, kind: echo, greeting: hello, lag_threshold: 3}\n"), noEnv)
		if err == nil {
			err = cfg.Validate()
		}
		if err != nil {
			t.Fatal(err)
		}
		if e, ok := cfg.Sources[0].Settings.(*echoConfig); !ok || e.Greeting != "hello" || e.Name != "a" || cfg.Sources[0].LagThreshold != 3 {
			t.Fatalf("decoded %+v", cfg.Sources[0])
		}
	})

	t.Run("Help", func(t *testing.T) {
		var out bytes.Buffer
		if err := run(context.Background(), []string{"sim", "--help"}, noEnv, &out, io.Discard); !errors.Is(err, errHelp) {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), "evindex sim flow|spacemesh|presearch|echo ") {
			t.Errorf("usage line does not list the kinds:\n%s", out.String())
		}
		for _, k := range sourceKinds {
			if !strings.Contains(out.String(), k.Name+strings.Repeat(" ", 10-len(k.Name))+" "+k.Simulator.About) {
				t.Errorf("sim --help does not describe %s:\n%s", k.Name, out.String())
			}
		}
		out.Reset()
		if err := run(context.Background(), []string{"sim", "echo", "--help"}, noEnv, &out, io.Discard); !errors.Is(err, errHelp) {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), "history at start, in echoes") || !strings.Contains(out.String(), "-greeting") {
			t.Errorf("sim echo --help has neither the kind's unit nor its own flag:\n%s", out.String())
		}
		out.Reset()
		if err := run(context.Background(), []string{"demo", "--help"}, noEnv, &out, io.Discard); !errors.Is(err, errHelp) {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), "simulated Flow, Spacemesh, Presearch and Echo upstreams") {
			t.Errorf("demo --help does not name the kinds:\n%s", out.String())
		}
		err := run(context.Background(), []string{"sim", "ehco"}, noEnv, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), `"ehco" is not a source kind (flow, spacemesh, presearch, echo)`) {
			t.Errorf("sim ehco: %v", err)
		}
	})

	t.Run("Sim", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // serve, say where, and stop at once
		var out bytes.Buffer
		if err := run(ctx, []string{"sim", "echo", "--greeting", "hey", "--history", "7"}, noEnv, &out, io.Discard); err != nil {
			t.Fatal(err)
		}
		if got := out.String(); got != "echo upstream on nowhere (hey, 7 echoes)\n" {
			t.Errorf("sim echo printed %q", got)
		}
	})

	t.Run("Demo", func(t *testing.T) {
		if testing.Short() {
			t.Skip("starts every simulator")
		}
		ctx, cancel := context.WithCancel(context.Background())
		logs, out := &storetest.LogBuffer{}, &storetest.LogBuffer{}
		done := make(chan error, 1)
		go func() {
			done <- run(ctx, []string{"demo", "--data", filepath.Join(t.TempDir(), "demo"), "--http", "127.0.0.1:0"}, noEnv, out, logs)
		}()
		defer func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("evindex demo: %v", err)
			}
		}()
		var addr string
		waitUntil(t, logs, done, "the demo serves", func() bool {
			addr = logField(logs.String(), "evindex serving", "addr")
			return addr != ""
		})
		var list struct {
			Items []struct {
				Name, Kind, State string
				LagThreshold      uint64 `json:"lag_threshold"`
			} `json:"items"`
		}
		waitUntil(t, logs, done, "echo-demo is live", func() bool {
			list.Items = nil
			if getJSON("http://"+addr+"/v1/sources", &list) != nil {
				return false
			}
			return slices.ContainsFunc(list.Items, func(s struct {
				Name, Kind, State string
				LagThreshold      uint64 `json:"lag_threshold"`
			}) bool {
				return s.Name == "echo-demo" && s.State == "live"
			})
		})
		var kinds []string
		for _, s := range list.Items {
			kinds = append(kinds, s.Kind)
			if k, _ := lookupKind(s.Kind); s.LagThreshold != k.LagThreshold {
				t.Errorf("%s: lag_threshold %d, want the kind's %d", s.Name, s.LagThreshold, k.LagThreshold)
			}
		}
		slices.Sort(kinds)
		if want := []string{"echo", "flow", "presearch", "spacemesh"}; !slices.Equal(kinds, want) {
			t.Errorf("the demo indexes kinds %v, want %v", kinds, want)
		}
		if !strings.Contains(out.String(), "  echo upstream      nowhere\n") {
			t.Errorf("the demo's banner does not come from the registry:\n%s", out.String())
		}
	})
}

// echoKind is a kind the way a source package declares one, registered by
// the test: its source emits nothing and is live at once.
var echoKind = indexer.SourceKind{
	Name:         "echo",
	Title:        "Echo",
	NewConfig:    func(name string) indexer.SourceConfig { return &echoConfig{Name: name} },
	LagThreshold: 42,
	Simulator: indexer.Simulator{
		About:   "an upstream that says nothing",
		History: "echoes",
		Flags: func(fs *flag.FlagSet) func(context.Context, indexer.SimOptions) (*indexer.Simulation, error) {
			greeting := fs.String("greeting", "hi", "what it says")
			return func(_ context.Context, o indexer.SimOptions) (*indexer.Simulation, error) {
				return &indexer.Simulation{Upstream: "echo upstream", Addr: "nowhere (" + *greeting + ", " + u64s(o.History) + " echoes)", Close: func() {}}, nil
			}
		},
		Demo: func(context.Context, time.Time) (*indexer.Simulation, error) {
			return &indexer.Simulation{Upstream: "echo upstream", Addr: "nowhere", Name: "echo-demo",
				Config: &echoConfig{Name: "echo-demo", Greeting: "hi"}, Close: func() {}}, nil
		},
	},
}

type echoConfig struct {
	Name     string `yaml:"-"`
	Greeting string `yaml:"greeting"`
}

func (c *echoConfig) Validate() error {
	if c.Greeting == "" {
		return errors.New("greeting: required")
	}
	return nil
}

func (c *echoConfig) NewSource() (indexer.Source, error) { return echoSource{c.Name}, nil }

type echoSource struct{ name string }

func (s echoSource) Name() string     { return s.name }
func (s echoSource) Kind() string     { return "echo" }
func (s echoSource) Endpoint() string { return "nowhere" }

func (s echoSource) Run(ctx context.Context, _ indexer.Resume, sink indexer.Sink) error {
	sink.SetState(store.StateLive)
	<-ctx.Done()
	return nil
}

func u64s(n uint64) string { return strconv.FormatUint(n, 10) }
