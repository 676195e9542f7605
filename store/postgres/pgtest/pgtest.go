// Package pgtest starts throwaway PostgreSQL 15 servers for tests: a
// cluster made by initdb in a temporary directory, listening on 127.0.0.1
// on a free port with its socket in that directory, and streaming replicas
// of it made by pg_basebackup. It is imported by tests only.
//
// A test binary shares one server and gives each test a fresh schema
// (a database of its own, as far as the code under test can tell):
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
//
//	func TestX(t *testing.T) { dsn := pgtest.DSN(t); ... }
//
// Without the server binaries a test skips, saying how to install them;
// with CI=true in the environment it fails instead, so CI never passes by
// skipping.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// BinDir is where Debian's postgresql package installs the version 15
// server binaries; EVINDEX_PG_BIN overrides it.
const BinDir = "/usr/lib/postgresql/15/bin"

// OSUser is the account the server runs as when the tests run as root:
// initdb and postgres refuse to run as root.
const OSUser = "postgres"

// ErrNoServer is returned when the server binaries are not installed.
var ErrNoServer = errors.New("PostgreSQL 15 server binaries not found (install them with: apt-get install postgresql)")

// Server is one running PostgreSQL cluster.
type Server struct {
	// Dir holds the cluster's data directory, socket and log; it is
	// removed by Stop.
	Dir string
	// Port is the TCP port on 127.0.0.1.
	Port int

	bin      string
	data     string
	log      string
	watchdog *exec.Cmd
	stopped  bool
	replicas []*Server
}

// binDir returns the directory of the server binaries or ErrNoServer.
func binDir() (string, error) {
	dir := BinDir
	if d := os.Getenv("EVINDEX_PG_BIN"); d != "" {
		dir = d
	}
	for _, name := range []string{"initdb", "pg_ctl", "postgres", "pg_basebackup"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			return "", fmt.Errorf("%w: %s", ErrNoServer, filepath.Join(dir, name))
		}
	}
	return dir, nil
}

// Start makes a new cluster in a temporary directory and starts it.
// fsync stays on: the crash tests depend on what a real server keeps.
func Start(ctx context.Context) (*Server, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	s, err := newServer(bin)
	if err != nil {
		return nil, err
	}
	// --no-sync only skips initdb's own final flush of the new files; the
	// running server syncs as usual.
	if err := s.run(ctx, "initdb", "-D", s.data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync"); err != nil {
		os.RemoveAll(s.Dir)
		return nil, fmt.Errorf("initdb: %w", err)
	}
	if err := s.start(ctx); err != nil {
		os.RemoveAll(s.Dir)
		return nil, err
	}
	return s, nil
}

func newServer(bin string) (*Server, error) {
	dir, err := os.MkdirTemp("", "evindex-pg-")
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	if err := chownToServer(dir); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return &Server{Dir: dir, bin: bin, data: filepath.Join(dir, "data"), log: filepath.Join(dir, "log")}, nil
}

// chownToServer gives the directory to the server's account when the
// tests run as root.
func chownToServer(dir string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	u, err := user.Lookup(OSUser)
	if err != nil {
		return fmt.Errorf("pgtest: user %s: %w", OSUser, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(dir, uid, gid); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	return nil
}

// command builds a server binary's command line, run as the server's
// account when the tests run as root.
func (s *Server) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	path := filepath.Join(s.bin, name)
	if os.Geteuid() == 0 {
		return exec.CommandContext(ctx, "runuser", append([]string{"-u", OSUser, "--", path}, args...)...)
	}
	return exec.CommandContext(ctx, path, args...)
}

func (s *Server) run(ctx context.Context, name string, args ...string) error {
	out, err := s.command(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", name, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// start picks a free port and starts the server on it, retrying when
// another process took the port in between.
func (s *Server) start(ctx context.Context) error {
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if s.Port, err = freePort(); err != nil {
			return err
		}
		if err = s.startOn(ctx); err == nil {
			return s.startWatchdog()
		}
	}
	return err
}

func (s *Server) startOn(ctx context.Context) error {
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=on -c max_connections=200", s.Port, s.Dir)
	err := s.run(ctx, "pg_ctl", "-D", s.data, "-o", opts, "-l", s.log, "-w", "-t", "60", "start")
	if err != nil {
		log, _ := os.ReadFile(s.log)
		return fmt.Errorf("start postgres: %w\n%s", err, tail(string(log), 2000))
	}
	s.stopped = false
	return nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// startWatchdog starts a small process that stops the server and removes
// its directory when this process dies without cleaning up (a panic, a
// test timeout, kill -9), so no server or data outlives its tests.
func (s *Server) startWatchdog() error {
	stop := fmt.Sprintf("%s -D %s -m immediate stop", filepath.Join(s.bin, "pg_ctl"), s.data)
	if os.Geteuid() == 0 {
		stop = "runuser -u " + OSUser + " -- " + stop
	}
	script := fmt.Sprintf(`while kill -0 %d 2>/dev/null; do sleep 1; done; %s >/dev/null 2>&1; rm -rf %s`, os.Getpid(), stop, s.Dir)
	cmd := exec.Command("sh", "-c", script)
	// Its own process group, so stopping it also ends its sleep.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("pgtest watchdog: %w", err)
	}
	s.watchdog = cmd
	return nil
}

func (s *Server) stopWatchdog() {
	if s.watchdog != nil {
		_ = syscall.Kill(-s.watchdog.Process.Pid, syscall.SIGKILL)
		_ = s.watchdog.Wait()
		s.watchdog = nil
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgtest: free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// DSN is the connection string of database db as the superuser postgres.
func (s *Server) DSN(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.Port, db)
}

// Kill stops the server the way a crash would (pg_ctl -m immediate): no
// checkpoint, recovery from the WAL at the next Restart.
func (s *Server) Kill(ctx context.Context) error {
	return s.stop(ctx, "immediate")
}

// Restart starts a stopped or killed server again on the same port.
func (s *Server) Restart(ctx context.Context) error {
	if !s.stopped {
		return errors.New("pgtest: restart of a running server")
	}
	if err := s.startOn(ctx); err != nil {
		return err
	}
	return s.startWatchdog()
}

func (s *Server) stop(ctx context.Context, mode string) error {
	if s.stopped {
		return nil
	}
	s.stopWatchdog()
	if err := s.run(ctx, "pg_ctl", "-D", s.data, "-m", mode, "-w", "stop"); err != nil {
		return err
	}
	s.stopped = true
	return nil
}

// Stop stops the server and its replicas and removes their directories.
func (s *Server) Stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var errs []error
	for _, r := range s.replicas {
		errs = append(errs, r.Stop())
	}
	errs = append(errs, s.stop(ctx, "fast"))
	if err := errors.Join(errs...); err != nil {
		return err // keep the directory and its log for a look
	}
	return os.RemoveAll(s.Dir)
}

// Replica makes a streaming replica of the server with pg_basebackup
// (-R writes its standby settings, -X stream copies the WAL made meanwhile)
// and starts it on a port of its own. It is read-only and follows the
// primary until Stop; the primary's Stop stops it too.
func (s *Server) Replica(ctx context.Context) (*Server, error) {
	r, err := newServer(s.bin)
	if err != nil {
		return nil, err
	}
	err = r.run(ctx, "pg_basebackup", "-D", r.data, "-R", "-X", "stream", "-c", "fast",
		"-h", "127.0.0.1", "-p", strconv.Itoa(s.Port), "-U", "postgres")
	if err != nil {
		os.RemoveAll(r.Dir)
		return nil, fmt.Errorf("pg_basebackup: %w", err)
	}
	if err := r.start(ctx); err != nil {
		os.RemoveAll(r.Dir)
		return nil, err
	}
	s.replicas = append(s.replicas, r)
	return r, nil
}

// WaitReplay waits until the replica has replayed everything the primary
// had written when it was called, polling; it fails when ctx ends first.
func (s *Server) WaitReplay(ctx context.Context, replica *Server) error {
	primary, err := pgx.Connect(ctx, s.DSN("postgres"))
	if err != nil {
		return fmt.Errorf("wait replay: %w", err)
	}
	defer primary.Close(context.Background())
	var lsn string
	if err := primary.QueryRow(ctx, "SELECT pg_current_wal_lsn()::text").Scan(&lsn); err != nil {
		return fmt.Errorf("wait replay: %w", err)
	}
	standby, err := pgx.Connect(ctx, replica.DSN("postgres"))
	if err != nil {
		return fmt.Errorf("wait replay: %w", err)
	}
	defer standby.Close(context.Background())
	for {
		var done bool
		err := standby.QueryRow(ctx, "SELECT coalesce(pg_last_wal_replay_lsn() >= $1::pg_lsn, false)", lsn).Scan(&done)
		if err != nil {
			return fmt.Errorf("wait replay: %w", err)
		}
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait replay to %s: %w", lsn, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// CreateDatabase creates an empty database and returns its DSN.
func (s *Server) CreateDatabase(ctx context.Context, name string) (string, error) {
	conn, err := pgx.Connect(ctx, s.DSN("postgres"))
	if err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()+" TEMPLATE template0"); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	return s.DSN(name), nil
}

// DropDatabase drops a database, ending its sessions first.
func (s *Server) DropDatabase(ctx context.Context, name string) error {
	conn, err := pgx.Connect(ctx, s.DSN("postgres"))
	if err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	return nil
}

// The server shared by a test binary's tests, started on first use.
var shared struct {
	sync.Mutex
	main    bool // Main runs, and stops the server at the end
	server  *Server
	err     error
	started bool
	db      string // the database the tests' schemas are made in
	dbs     atomic.Int64
}

// Main runs the tests of a package that uses Shared or DSN, and
// stops the shared server after them, whether they passed or not. Call it
// from TestMain: os.Exit(pgtest.Main(m)).
func Main(m *testing.M) int {
	shared.Lock()
	shared.main = true
	shared.Unlock()
	code := m.Run()
	shared.Lock()
	defer shared.Unlock()
	if shared.server != nil {
		if err := shared.server.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: stop server: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
		shared.server = nil
	}
	return code
}

// Shared returns the test binary's shared server, starting it on first
// use. Without the binaries it skips the test (fails it when CI=true).
func Shared(t testing.TB) *Server {
	t.Helper()
	shared.Lock()
	defer shared.Unlock()
	if !shared.main {
		t.Fatal("pgtest: the package's TestMain must call pgtest.Main")
	}
	if !shared.started {
		shared.started = true
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		shared.server, shared.err = Start(ctx)
		cancel()
	}
	if shared.err != nil {
		Unavailable(t, shared.err)
	}
	return shared.server
}

// Unavailable ends a test that cannot get a server: a skip naming the
// reason and the fix, or a failure when CI=true or the binaries are there
// but do not work.
func Unavailable(t testing.TB, err error) {
	t.Helper()
	if errors.Is(err, ErrNoServer) && os.Getenv("CI") != "true" {
		t.Skipf("skipping: %v", err)
	}
	t.Fatalf("pgtest: %v", err)
}

// DSN returns the connection string of an empty schema made for the
// test in a database of the shared server, dropped when the test ends.
// The connection's search_path is that schema, so code that names no
// schema sees a database of its own; a schema takes milliseconds to make,
// where CREATE DATABASE with fsync on takes about a second.
func DSN(t testing.TB) string {
	t.Helper()
	s := Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	shared.Lock()
	if shared.db == "" {
		if _, err := s.CreateDatabase(ctx, "evindex_test"); err != nil {
			shared.Unlock()
			t.Fatal(err)
		}
		shared.db = "evindex_test"
	}
	shared.Unlock()
	name := fmt.Sprintf("t%d", shared.dbs.Add(1))
	conn, err := pgx.Connect(ctx, s.DSN(shared.db))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+name); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		conn, err := pgx.Connect(ctx, s.DSN(shared.db))
		if err != nil {
			t.Errorf("pgtest: drop schema %s: %v", name, err)
			return
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+name+" CASCADE"); err != nil {
			t.Errorf("pgtest: drop schema %s: %v", name, err)
		}
	})
	return s.DSN(shared.db) + "&search_path=" + name
}

// StartOwn starts a server of the test's own (for tests that kill or
// restart it), stopped when the test ends.
func StartOwn(t testing.TB) *Server {
	t.Helper()
	if _, err := binDir(); err != nil {
		Unavailable(t, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("pgtest: stop server: %v", err)
		}
	})
	return s
}
