package pgstore

import (
	"context"
	"embed"
	"fmt"
	"hash/fnv"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Migration files are named NNNN_description.sql and applied in version
// order. A file, once released, never changes: changes are new files. The
// text "{schema}" in a file is replaced by the quoted schema name.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

type migration struct {
	version int
	name    string
	sql     string
}

// loadMigrations reads the embedded migrations in version order.
func loadMigrations(fsys fs.FS) ([]migration, error) {
	names, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var ms []migration
	seen := map[int]string{}
	for _, name := range names {
		base := path.Base(name)
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("pgstore: migration %s: name must be NNNN_description.sql", base)
		}
		if other, dup := seen[v]; dup {
			return nil, fmt.Errorf("pgstore: migrations %s and %s share version %d", other, base, v)
		}
		seen[v] = base
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: base, sql: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	return ms, nil
}

// migrate creates the schema if missing and applies every migration not yet
// recorded in <schema>.schema_migrations, each in its own transaction.
//
// Each transaction first takes a transaction-scoped advisory lock derived
// from the schema name, so replicas starting together apply each migration
// exactly once: the others wait, then see it recorded. Nothing needs DDL
// rights once the schema is up to date. Versions in the table that this
// binary does not know (a newer replica migrated first) are left alone.
func migrate(ctx context.Context, pool *pgxpool.Pool, schema string) error {
	ms, err := loadMigrations(migrationFiles)
	if err != nil {
		return err
	}
	ident := pgx.Identifier{schema}.Sanitize()
	lock := advisoryLockKey(schema)
	for _, m := range ms {
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			// Migrations (and the wait for another replica's) may take
			// longer than a key lookup's statement_timeout; Open's own
			// deadline still bounds them.
			if _, err := tx.Exec(ctx, "SET LOCAL statement_timeout = '60s'"); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", lock); err != nil {
				return err
			}
			// CREATE SCHEMA IF NOT EXISTS checks the CREATE privilege even
			// when the schema exists: look first.
			var exists bool
			if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", schema).Scan(&exists); err != nil {
				return err
			}
			if !exists {
				if _, err := tx.Exec(ctx, "CREATE SCHEMA "+ident); err != nil {
					return err
				}
			}
			if _, err := tx.Exec(ctx, "CREATE TABLE IF NOT EXISTS "+ident+`.schema_migrations (
				version    integer PRIMARY KEY,
				applied_at timestamptz NOT NULL
			)`); err != nil {
				return err
			}
			var applied bool
			if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM "+ident+".schema_migrations WHERE version = $1)", m.version).Scan(&applied); err != nil {
				return err
			}
			if applied {
				return nil
			}
			// No arguments: pgx sends it over the simple protocol, so a
			// file may hold several statements.
			if _, err := tx.Exec(ctx, strings.ReplaceAll(m.sql, "{schema}", ident)); err != nil {
				return fmt.Errorf("apply %s: %w", m.name, err)
			}
			_, err := tx.Exec(ctx, "INSERT INTO "+ident+".schema_migrations (version, applied_at) VALUES ($1, now())", m.version)
			return err
		})
		if err != nil {
			return wrapErr(fmt.Sprintf("migrate schema %s to version %d", schema, m.version), err)
		}
	}
	return nil
}

// advisoryLockKey derives the migration lock from the schema name, so
// stores on different schemas migrate independently.
func advisoryLockKey(schema string) int64 {
	h := fnv.New64a()
	h.Write([]byte("gatehouse/pgstore migrate\x00" + schema))
	return int64(h.Sum64())
}
