package httpapi

import (
	"os"
	"testing"

	"github.com/evindex/evindex/store/postgres/pgtest"
)

// TestMain stops the shared PostgreSQL test server after the tests: with
// EVINDEX_TEST_STORE=postgres (storetest.BackendEnv) the API's tests run on
// PostgreSQL instead of a bbolt file.
func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
