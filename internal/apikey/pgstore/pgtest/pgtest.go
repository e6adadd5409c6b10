// Package pgtest holds test helpers for PostgreSQL-backed tests: the DSN
// (skipped when unreachable unless GATEHOUSE_REQUIRE_SERVICES=1) and a fresh
// schema per test. A separate package so the gateway binary never links
// package testing.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Test helpers, exported so that other packages' tests can run against
// the same PostgreSQL server. They live in a non-test file to be
// importable; they only run when a test calls them.

// DefaultTestDSN is the server tests use when GATEHOUSE_TEST_POSTGRES_DSN is
// unset: the CI service, with trust authentication.
const DefaultTestDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

var testDSNs sync.Map // dsn → error from the first reachability check (nil: reachable)

// TestDSN returns the DSN of the test server (GATEHOUSE_TEST_POSTGRES_DSN,
// default DefaultTestDSN) after checking that it answers. If it does not,
// the test is skipped, or fails when GATEHOUSE_REQUIRE_SERVICES=1 (as in
// CI, where a missing service must not pass as a skip).
func TestDSN(tb testing.TB) string {
	tb.Helper()
	dsn := os.Getenv("GATEHOUSE_TEST_POSTGRES_DSN")
	if dsn == "" {
		dsn = DefaultTestDSN
	}
	v, ok := testDSNs.Load(dsn)
	if !ok {
		v, _ = testDSNs.LoadOrStore(dsn, pingDSN(dsn))
	}
	if err, _ := v.(error); err != nil {
		if os.Getenv("GATEHOUSE_REQUIRE_SERVICES") == "1" {
			tb.Fatalf("PostgreSQL test server unreachable (GATEHOUSE_REQUIRE_SERVICES=1): %v", err)
		}
		tb.Skipf("PostgreSQL test server unreachable, skipping (set GATEHOUSE_TEST_POSTGRES_DSN, or GATEHOUSE_REQUIRE_SERVICES=1 to fail): %v", err)
	}
	return dsn
}

// pingDSN returns nil if dsn accepts a connection and a query.
func pingDSN(dsn string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	if err := conn.Ping(ctx); err != nil {
		return err
	}
	return nil
}

// FreshSchema returns a new, unused schema name for Options.Schema (Open
// creates it) and drops the schema with everything in it when the test
// ends. Register it before opening stores on it, so they close first.
func FreshSchema(tb testing.TB, dsn string) string {
	tb.Helper()
	var b [8]byte
	_, _ = rand.Read(b[:])
	schema := "gatehouse_test_" + hex.EncodeToString(b[:])
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			tb.Errorf("pgstore: drop test schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			tb.Errorf("pgstore: drop test schema %s: %v", schema, err)
		}
	})
	return schema
}
