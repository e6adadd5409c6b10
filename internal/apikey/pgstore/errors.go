package pgstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/gatehouse/gatehouse/internal/apikey"
)

// errClosed is reported (wrapping apikey.ErrUnavailable) by calls made
// after Close.
var errClosed = errors.New("pgstore: store is closed")

// wrapErr prefixes err with the operation and wraps the apikey sentinel
// callers must tell apart, keeping the driver error in the chain too.
func wrapErr(op string, err error) error {
	if err == nil {
		return nil
	}
	if kind := kindOf(err); kind != nil {
		return fmt.Errorf("pgstore: %s: %w: %w", op, kind, err)
	}
	return fmt.Errorf("pgstore: %s: %w", op, err)
}

// kindOf maps a driver error to an apikey sentinel, or nil when the error is
// none of them (a bug or a constraint we do not expect, such as a check
// violation).
func kindOf(err error) error {
	if errors.Is(err, errClosed) {
		return apikey.ErrUnavailable
	}
	if errors.Is(err, context.Canceled) {
		return nil // the caller gave up; says nothing about the store
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return apikey.ErrNotFound
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch code := pgErr.Code; {
		case code == "23505": // unique_violation
			return apikey.ErrConflict
		case code == "23503": // foreign_key_violation
			return apikey.ErrNotFound
		case strings.HasPrefix(code, "08"), // connection_exception
			strings.HasPrefix(code, "53"),  // insufficient_resources, too_many_connections
			strings.HasPrefix(code, "57P"), // admin_shutdown, crash_shutdown, cannot_connect_now
			code == "25006",                // read_only_sql_transaction: connected to a standby after failover
			code == "57014":                // query_canceled: statement_timeout
			return apikey.ErrUnavailable
		}
		return nil
	}
	if errors.Is(err, context.DeadlineExceeded) ||
		pgconn.Timeout(err) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) {
		return apikey.ErrUnavailable
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	if errors.As(err, &connectErr) || errors.As(err, &netErr) {
		return apikey.ErrUnavailable
	}
	// pgconn marks errors that happened before anything reached the server
	// (connection busy or closed) as safe to retry: the store is not usable.
	if pgconn.SafeToRetry(err) {
		return apikey.ErrUnavailable
	}
	return nil
}
