package pgstore

import "strings"

// queries holds every statement with the schema spliced in once, at Open.
// Table names are schema-qualified rather than resolved through
// search_path, which connection poolers such as PgBouncer do not keep per
// client.
type queries struct {
	createConsumer, getConsumer, getConsumerByName, listConsumers  string
	lockConsumer, deleteConsumerKeys, deleteConsumer               string
	createKey, getKey, listKeys, listAllKeys, lookupKey, updateKey string
	touchKeys                                                      string
}

const (
	consumerCols = `c.id, c.name, c.groups, c.tags, c.metadata, c.created_at`
	keyCols      = `k.id, k.consumer_id, k.hash, k.hint, k.name, k.scopes, k.routes, k.tier,
		k.status, k.created_at, k.expires_at, k.revoked_at, k.rotated_to, k.last_used_at`
)

func newQueries(schema string) queries {
	r := strings.NewReplacer("{schema}", schema, "{channel}", "'"+NotifyChannel+"'")
	return queries{
		createConsumer: r.Replace(`INSERT INTO {schema}.consumers (id, name, groups, tags, metadata, created_at)
			VALUES ($1, $2, $3, $4, $5, $6)`),
		getConsumer:       r.Replace(`SELECT ` + consumerCols + ` FROM {schema}.consumers c WHERE c.id = $1`),
		getConsumerByName: r.Replace(`SELECT ` + consumerCols + ` FROM {schema}.consumers c WHERE c.name = $1`),
		listConsumers:     r.Replace(`SELECT ` + consumerCols + ` FROM {schema}.consumers c ORDER BY c.created_at, c.id`),

		// Locking the consumer row first makes a concurrent CreateKey for it
		// (whose foreign-key check takes KEY SHARE on that row) either commit
		// before the key delete below sees it, or fail afterwards.
		lockConsumer: r.Replace(`SELECT 1 FROM {schema}.consumers WHERE id = $1 FOR UPDATE`),
		deleteConsumerKeys: r.Replace(`WITH d AS (DELETE FROM {schema}.api_keys WHERE consumer_id = $1 RETURNING id)
			SELECT pg_notify({channel}, d.id) FROM d`),
		deleteConsumer: r.Replace(`DELETE FROM {schema}.consumers WHERE id = $1`),

		createKey: r.Replace(`WITH i AS (
				INSERT INTO {schema}.api_keys (id, consumer_id, hash, hint, name, scopes, routes, tier,
					status, created_at, expires_at, revoked_at, rotated_to, last_used_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
				RETURNING id)
			SELECT pg_notify({channel}, i.id) FROM i`),
		getKey:      r.Replace(`SELECT ` + keyCols + ` FROM {schema}.api_keys k WHERE k.id = $1`),
		listKeys:    r.Replace(`SELECT ` + keyCols + ` FROM {schema}.api_keys k WHERE k.consumer_id = $1 ORDER BY k.created_at, k.id`),
		listAllKeys: r.Replace(`SELECT ` + keyCols + ` FROM {schema}.api_keys k ORDER BY k.created_at, k.id`),
		lookupKey: r.Replace(`SELECT ` + keyCols + `, ` + consumerCols + `
			FROM {schema}.api_keys k JOIN {schema}.consumers c ON c.id = k.consumer_id
			WHERE k.hash = $1`),
		updateKey: r.Replace(`WITH u AS (
				UPDATE {schema}.api_keys SET status = $2, expires_at = $3, revoked_at = $4, rotated_to = $5,
					name = $6, scopes = $7, routes = $8, tier = $9
				WHERE id = $1
				RETURNING id)
			SELECT pg_notify({channel}, u.id) FROM u`),

		// Rows are locked in id order before they are updated, so replicas
		// flushing overlapping batches at once queue instead of deadlocking;
		// rows whose stored time is already later are neither locked nor
		// rewritten (GREATEST keeps last_used_at from moving backwards).
		touchKeys: r.Replace(`WITH t AS MATERIALIZED (
				SELECT id, max(used) AS used
				FROM unnest($1::text[], $2::timestamptz[]) AS t(id, used)
				GROUP BY id),
			l AS MATERIALIZED (
				SELECT k.id FROM {schema}.api_keys k JOIN t ON t.id = k.id
				WHERE k.last_used_at IS NULL OR k.last_used_at < t.used
				ORDER BY k.id
				FOR UPDATE OF k)
			UPDATE {schema}.api_keys AS k SET last_used_at = GREATEST(k.last_used_at, t.used)
			FROM t JOIN l ON l.id = t.id
			WHERE k.id = t.id`),
	}
}
