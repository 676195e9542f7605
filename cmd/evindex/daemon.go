package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/rs/zerolog"

	"github.com/evindex/evindex/httpapi"
	"github.com/evindex/evindex/indexer"
	"github.com/evindex/evindex/store"
)

// runFlags are the flags of `evindex run`; each can also be set by the
// environment variable EVINDEX_<FLAG> (dashes become underscores).
type runFlags struct {
	config                string
	dataDir               string
	httpListen, httpToken string
	logLevel, logFormat   string
}

func runDaemonCmd(ctx context.Context, e env, args []string) error {
	fs := newFlagSet(e, "run", "--config FILE [flags]",
		"Runs every configured source and the HTTP API until SIGINT or SIGTERM.\n"+
			"Flags override the config file; every flag can also be set as EVINDEX_<FLAG>,\n"+
			"e.g. EVINDEX_HTTP_LISTEN=127.0.0.1:9090.")
	var f runFlags
	fs.StringVar(&f.config, "config", "", "YAML config file (evindex config prints every key; evindex config check FILE validates one); without it evindex serves --data-dir with no sources")
	fs.StringVar(&f.dataDir, "data-dir", "", "data directory (default ./data)")
	fs.StringVar(&f.httpListen, "http-listen", "", "API listen address (default 127.0.0.1:8080)")
	fs.StringVar(&f.httpToken, "http-token", "", "bearer token the API requires (required off loopback)")
	// Typed, so --help says what each takes and a bare --http-insecure
	// is true instead of taking the next argument as its value.
	fs.Bool("http-insecure", false, "allow a non-loopback listen address without a token")
	fs.StringVar(&f.logLevel, "log-level", "", "debug, info, warn or error (default info)")
	fs.StringVar(&f.logFormat, "log-format", "", "auto, console or json (default auto)")
	fs.Int("batch-max-records", 0, "records per write transaction (default 5000)")
	fs.Duration("batch-max-delay", 0, "longest wait before a write commits (default 100ms)")
	fs.Int("memory-limit-mb", 0, fmt.Sprintf("soft limit of the Go heap in MiB, 0: none (default %d; GOMEMLIMIT wins)", indexer.DefaultMemoryLimitMB))
	fs.Int("memory-gc-percent", 0, fmt.Sprintf("heap growth in percent that triggers a collection below the limit, -1: only at the limit (default %d; GOGC wins)", indexer.DefaultGCPercent))
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := loadRunConfig(fs, &f, e.getenv)
	if err != nil {
		return err
	}
	return runDaemon(ctx, cfg, e, nil)
}

// loadRunConfig layers defaults, the config file, EVINDEX_* variables and
// flags, in that order, and validates the result.
func loadRunConfig(fs *flag.FlagSet, f *runFlags, getenv func(string) string) (Config, error) {
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	// origins name what set a field, as the user typed it: an error about
	// it names --http-listen or EVINDEX_HTTP_LISTEN, not http.listen.
	origins := map[string]string{}
	var origin string
	pick := func(name string, _ string) (string, bool) {
		if set[name] {
			origin = "--" + name
			return fs.Lookup(name).Value.String(), true
		}
		if v := getenv(envName(name)); v != "" {
			origin = envName(name)
			return v, true
		}
		return "", false
	}
	cfg := DefaultConfig()
	setBy := func(field string) {
		cfg.forget(field)
		origins[field] = origin
	}
	if path, ok := pick("config", f.config); ok {
		var err error
		if cfg, err = LoadConfigFile(path, getenv); err != nil {
			return Config{}, fmt.Errorf("%s: %w", path, err)
		}
	}
	if v, ok := pick("data-dir", f.dataDir); ok {
		cfg.DataDir = v
		setBy("data_dir")
	}
	if v, ok := pick("http-listen", f.httpListen); ok {
		cfg.HTTP.Listen = v
		setBy("http.listen")
	}
	if v, ok := pick("http-token", f.httpToken); ok {
		cfg.HTTP.Token = v
		setBy("http.token")
	}
	if v, ok := pick("http-insecure", ""); ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return Config{}, usagef("%s: %q is not true or false", origin, v)
		}
		cfg.HTTP.Insecure = b
		setBy("http.insecure")
	}
	if v, ok := pick("log-level", f.logLevel); ok {
		cfg.Log.Level = v
		setBy("log.level")
	}
	if v, ok := pick("log-format", f.logFormat); ok {
		cfg.Log.Format = v
		setBy("log.format")
	}
	if v, ok := pick("batch-max-records", ""); ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			return Config{}, usagef("%s: %q is not a whole number", origin, v)
		}
		cfg.Store.BatchMaxRecords = n
		setBy("store.batch_max_records")
	}
	if v, ok := pick("batch-max-delay", ""); ok {
		d, err := time.ParseDuration(v)
		if err != nil {
			return Config{}, usagef("%s: %q is not a duration like 100ms", origin, v)
		}
		cfg.Store.BatchMaxDelay = d
		setBy("store.batch_max_delay")
	}
	if v, ok := pick("memory-limit-mb", ""); ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			return Config{}, usagef("%s: %q is not a whole number", origin, v)
		}
		cfg.Memory.LimitMB = n
		setBy("memory.limit_mb")
	}
	if v, ok := pick("memory-gc-percent", ""); ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			return Config{}, usagef("%s: %q is not a whole number", origin, v)
		}
		cfg.Memory.GCPercent = n
		setBy("memory.gc_percent")
	}
	if err := cfg.Validate(); err != nil {
		if ce, ok := asConfigError(err); ok && origins[ce.Field] != "" {
			ce.Field = origins[ce.Field]
		}
		return Config{}, err
	}
	return cfg, nil
}

// memoryBudget applies cfg's budget unless the environment sets GOMEMLIMIT
// or GOGC: then the runtime's own reading of them stands.
func memoryBudget(cfg MemoryConfig, getenv func(string) string) (restore func()) {
	if getenv("GOMEMLIMIT") != "" || getenv("GOGC") != "" {
		return func() {}
	}
	return indexer.SetMemoryBudget(cfg.LimitMB, cfg.GCPercent)
}

// daemonHooks let the demo and tests observe a running daemon.
type daemonHooks struct {
	// listener, when set, is served instead of listening on cfg.HTTP.Listen.
	listener net.Listener
	// ready is called with the API's address once it is serving.
	ready func(addr string)
	// logger replaces the configured logger (tests capture logs).
	logger *zerolog.Logger
	// store, when set, wraps the opened store that the sources write to
	// and the API reads (tests hold its writes).
	store func(store.Store) store.Store
}

// runDaemon wires the store, the sources and the API and runs them until
// ctx ends; then it stops the sources (each commits what it has), the API
// and the store, within a few seconds.
func runDaemon(ctx context.Context, cfg Config, e env, hooks *daemonHooks) error {
	if hooks == nil {
		hooks = &daemonHooks{}
	}
	var log zerolog.Logger
	if hooks.logger != nil {
		log = *hooks.logger
	} else {
		var err error
		if log, err = newLogger(e.stderr, cfg.Log); err != nil {
			return err
		}
	}
	sources, err := buildSources(cfg)
	if err != nil {
		return err
	}
	defer memoryBudget(cfg.Memory, e.getenv)()
	be, err := openBackend(ctx, cfg)
	if err != nil {
		return err
	}
	st := be.st
	defer st.Close()
	if hooks.store != nil {
		st = hooks.store(st)
	}
	var lease *indexer.LeaseConfig
	var board *leaseBoard
	if be.leases != nil {
		ttl := cfg.Store.Postgres.LeaseTTL
		lease = &indexer.LeaseConfig{Leases: be.leases, Owner: instanceName(cfg), TTL: ttl}
		board = &leaseBoard{leases: be.leases, every: ttl / 3, log: log}
		board.refresh(ctx)
		log.Info().Str("instance", lease.Owner).Dur("lease_ttl", ttl).Msg("shared store: sources are ingested under leases")
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := indexer.NewMetrics(reg)

	runners := make([]*indexer.Runner, len(sources))
	for i, s := range sources {
		runners[i] = indexer.NewRunner(st, s.src, indexer.RunnerConfig{
			BatchMaxRecords: cfg.Store.BatchMaxRecords,
			BatchMaxDelay:   cfg.Store.BatchMaxDelay,
			LagThreshold:    s.lagThreshold,
			StallThreshold:  s.stallThreshold,
			Logger:          log,
			Metrics:         metrics,
			Lease:           lease,
			Alerts:          cfg.Alerts.evaluator(st, s),
			AlertInterval:   cfg.Alerts.Interval,
		})
	}
	api := httpapi.New(httpapi.Config{
		Store:        st,
		Sources:      func() []store.SourceStatus { return sourceStatuses(runners, board) },
		Gatherer:     reg,
		Registerer:   reg,
		Token:        cfg.HTTP.Token,
		AllowedHosts: cfg.HTTP.AllowedHosts,
		MaxStreams:   cfg.HTTP.MaxStreams,
		MaxBackups:   cfg.HTTP.MaxBackups,
		Logger:       log,
		ReplicaLag:   be.replicaLag,
		MaxReplayLag: cfg.Store.Postgres.MaxReplayLag,
	})

	webhooks, err := newWebhooks(cfg, st, reg, log)
	if err != nil {
		return err
	}

	ln := hooks.listener
	if ln == nil {
		if ln, err = net.Listen("tcp", cfg.HTTP.Listen); err != nil {
			return fmt.Errorf("http.listen: %w", err)
		}
	}
	log.Info().Str("addr", ln.Addr().String()).Str("db", be.where).Int("sources", len(sources)).Msg("evindex serving")
	if len(sources) == 0 {
		log.Info().Msg("no sources configured: serving the stored data only")
	}

	runCtx, stopAll := context.WithCancel(ctx)
	defer stopAll()
	var wg sync.WaitGroup
	if board != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			board.run(runCtx)
		}()
	}
	if webhooks != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = webhooks.Run(runCtx) // it logs its own errors and retries
		}()
	}
	for _, r := range runners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A permanent failure is logged by the runner and shown on
			// /v1/sources; the other sources and the API keep running.
			_ = r.Run(runCtx)
		}()
	}
	apiErr := make(chan error, 1)
	go func() { apiErr <- api.Serve(runCtx, ln) }()
	if hooks.ready != nil {
		hooks.ready(ln.Addr().String())
	}

	select {
	case <-ctx.Done():
		log.Info().Msg("stopping: committing what was received")
	case err = <-apiErr:
		stopAll()
		wg.Wait()
		return fmt.Errorf("http api: %w", err)
	}
	stopAll()
	wg.Wait()
	if err := <-apiErr; err != nil {
		log.Warn().Err(err).Msg("http api stop")
	}
	log.Info().Msg("stopped")
	return nil
}
