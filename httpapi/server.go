// Package httpapi serves evindex's REST API (API.md): read-only queries over
// the store, streaming exports, the OpenAPI document, metrics and the
// dashboard page. It never writes to the store and knows nothing of the
// indexer: the wiring hands it the sources' live status as
// store.SourceStatus.
package httpapi

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/evindex/evindex/store"
)

// Server timeouts. WriteTimeout bounds ordinary responses; streaming
// exports and backups push their deadline forward as they write.
const (
	readHeaderTimeout = 10 * time.Second
	idleTimeout       = 120 * time.Second
	writeTimeout      = 60 * time.Second
	shutdownTimeout   = 3 * time.Second
	// maxBodyBytes bounds request bodies; every route is a GET, so
	// anything larger is a mistake or an attack.
	maxBodyBytes = 64 << 10
	// maxHeaderBytes bounds the request line and headers (net/http's
	// default is 1 MiB); the longest legitimate query is a few KiB.
	maxHeaderBytes = 64 << 10
)

// Config is what a Server needs.
type Config struct {
	Store store.Store
	// Sources returns the live status of the configured sources (nil: none).
	Sources func() []store.SourceStatus
	// Gatherer feeds /metrics (nil: prometheus.DefaultGatherer).
	Gatherer prometheus.Gatherer
	// Registerer takes the API's own metrics (request durations) and the
	// monitoring metrics read from the store (per node, per tracked
	// account: MonitoringMetrics); nil keeps them unregistered.
	Registerer prometheus.Registerer
	// Token, when set, is required as "Authorization: Bearer <token>" on
	// every route but /healthz, /readyz and the dashboard's static page.
	Token string
	// AllowedHosts are Host names, besides loopback ones, that a request
	// arriving on a loopback address may carry (a reverse proxy's public
	// name); see checkHost. Entries are compared as NormalizeHost gives them.
	AllowedHosts []string
	// MaxStreams caps concurrent streamed exports (ndjson, csv, parquet)
	// and MaxBackups concurrent backups; past the cap a request gets 429
	// too_many_requests. 0: DefaultMaxStreams, DefaultMaxBackups.
	MaxStreams, MaxBackups int
	Logger                 zerolog.Logger
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// ReplicaLag, when set, reports how far the replica the store reads
	// trails its primary (ok false: no replica); /readyz is 503 while the
	// lag exceeds MaxReplayLag.
	ReplicaLag   func(ctx context.Context) (lag time.Duration, ok bool, err error)
	MaxReplayLag time.Duration
}

// Server is the HTTP API over one store.
type Server struct {
	st      store.Store
	sources func() []store.SourceStatus
	token   []byte
	// tokenSum is the SHA-256 of token, what requests are compared with.
	tokenSum     [sha256.Size]byte
	allowedHosts []string
	streams      slots
	backups      slots
	log          zerolog.Logger
	now          func() time.Time
	// replicaLag and maxReplayLag: see Config.
	replicaLag   func(ctx context.Context) (time.Duration, bool, error)
	maxReplayLag time.Duration
	router       chi.Router
	metrics      http.Handler
	// requestSeconds is evindex_http_request_duration_seconds.
	requestSeconds *prometheus.HistogramVec
}

// New builds a Server; nothing listens until Serve.
func New(cfg Config) *Server {
	s := &Server{
		st:           cfg.Store,
		sources:      cfg.Sources,
		token:        []byte(cfg.Token),
		log:          cfg.Logger,
		now:          cfg.Now,
		streams:      newSlots(cfg.MaxStreams, DefaultMaxStreams),
		replicaLag:   cfg.ReplicaLag,
		maxReplayLag: cfg.MaxReplayLag,
		backups:      newSlots(cfg.MaxBackups, DefaultMaxBackups),
	}
	for _, h := range cfg.AllowedHosts {
		if h = NormalizeHost(h); h != "" {
			s.allowedHosts = append(s.allowedHosts, h)
		}
	}
	s.tokenSum = sha256.Sum256(s.token)
	if s.sources == nil {
		s.sources = func() []store.SourceStatus { return nil }
	}
	if s.now == nil {
		s.now = time.Now
	}
	g := cfg.Gatherer
	if g == nil {
		g = prometheus.DefaultGatherer
	}
	s.metrics = promhttp.HandlerFor(g, promhttp.HandlerOpts{ErrorLog: promLogger{&s.log}})
	s.requestSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "evindex_http_request_duration_seconds",
		Help: "Time to answer an HTTP request, to its last byte, by route pattern (unmatched: none) and status.",
		// From a cached page (0.5 ms) to a long export (about 2 min).
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 19),
	}, []string{"route", "status"})
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(s.requestSeconds, newMonitorCollector(cfg.Store, s.sources, time.Now))
	}
	s.router = s.routes()
	return s
}

// Handler is the API's root handler.
func (s *Server) Handler() http.Handler { return s.router }

// Serve serves on ln until ctx ends, then shuts down gracefully: requests
// in flight get a few seconds to finish before their connections close.
// It returns nil after a shutdown, or the error that stopped serving.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := s.httpServer()
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return fmt.Errorf("serve http: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		s.log.Warn().Err(err).Msg("http shutdown timed out; closing connections")
		_ = srv.Close()
	}
	if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve http: %w", err)
	}
	return nil
}

// httpServer is the server Serve runs: slow or idle clients and oversized
// requests cannot hold connections or memory.
func (s *Server) httpServer() *http.Server {
	return &http.Server{
		Handler:           s.router,
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleTimeout,
		WriteTimeout:      writeTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          newStdLogger(&s.log),
	}
}

func (s *Server) routes() chi.Router {
	r := chi.NewRouter()
	r.Use(middleware.RequestID, s.logRequests, s.recoverPanics, s.checkHost, s.limitBody, middleware.GetHead)
	r.NotFound(s.handle(func(w http.ResponseWriter, r *http.Request) error {
		return notFound("no route %s", r.URL.Path)
	}))
	r.MethodNotAllowed(s.handle(func(w http.ResponseWriter, r *http.Request) error {
		return &apiError{status: http.StatusMethodNotAllowed, code: "method_not_allowed", msg: r.Method + " is not allowed here; use GET"}
	}))

	r.Get("/healthz", s.handle(s.handleHealthz))
	r.Get("/readyz", s.handle(s.handleReadyz))
	// The dashboard page and its assets hold no data; the page asks for
	// the token when an API call answers 401.
	r.Get("/", s.handleDashboard)
	r.Get("/assets/*", s.handleAssets)

	r.Group(func(r chi.Router) {
		r.Use(s.requireToken)
		r.Get("/metrics", s.metrics.ServeHTTP)
		r.Get("/openapi.json", s.handleOpenAPI)
		r.Get("/v1/sources", s.handle(s.handleListSources))
		r.Get("/v1/sources/{name}", s.handle(s.handleGetSource))
		r.Get("/v1/sources/{name}/coverage", s.handle(s.handleCoverage))
		r.Get("/v1/blocks/{source}/{height}", s.handle(s.handleGetBlock))
		r.With(s.limit(s.backups, "backups", nil)).Get("/v1/admin/backup", s.handle(s.handleBackup))
		// The list endpoints: their exports stream for as long as the
		// client reads, so they share a cap.
		r.Group(func(r chi.Router) {
			r.Use(s.limit(s.streams, "streamed exports", isStream))
			r.Get("/v1/events", s.handle(s.handleList(ListEvents)))
			r.Get("/v1/blocks", s.handle(s.handleList(ListBlocks)))
			r.Get("/v1/rewards", s.handle(s.handleList(ListRewards)))
			r.Get("/v1/rewards/summary", s.handle(s.handleList(ListRewardSummary)))
			r.Get("/v1/rewards/missed", s.handle(s.handleList(ListMissed)))
			r.Get("/v1/rewards/missed/coverage", s.handle(s.handleList(ListMissedCover)))
			r.Get("/v1/rewards/epochs", s.handle(s.handleList(ListEpochTotals)))
			r.Get("/v1/nodes", s.handle(s.handleList(ListNodes)))
			r.Get("/v1/nodes/{source}/{node}/history", s.handle(s.handleNodeHistory))
			r.Get("/v1/rejected", s.handle(s.handleList(ListRejected)))
			r.Get("/v1/alerts", s.handle(s.handleList(ListAlerts)))
		})
	})
	return r
}

// handlerFunc is a handler that reports failure as an error, which handle
// turns into the API's error response.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

func (s *Server) handle(h handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.writeError(w, r, err)
		}
	}
}
