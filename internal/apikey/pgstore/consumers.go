package pgstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse/gatehouse/internal/apikey"
)

// CreateConsumer inserts c. A taken id or name is apikey.ErrConflict.
func (s *Store) CreateConsumer(ctx context.Context, c *apikey.Consumer) error {
	if c == nil || c.ID == "" || c.Name == "" {
		return errors.New("pgstore: create consumer: id and name are required")
	}
	ctx, cancel, conn, err := s.conn(ctx)
	if err == nil {
		defer cancel()
		defer conn.Release()
		_, err = conn.Exec(ctx, s.q.createConsumer,
			c.ID, c.Name, orEmpty(c.Groups), orEmpty(c.Tags), orEmptyMap(c.Metadata), c.CreatedAt)
	}
	if err != nil {
		return s.fail(fmt.Sprintf("create consumer %q", c.ID), err)
	}
	return nil
}

// GetConsumer returns the consumer with the given id, or apikey.ErrNotFound.
func (s *Store) GetConsumer(ctx context.Context, id string) (*apikey.Consumer, error) {
	ctx, cancel, conn, err := s.conn(ctx)
	if err != nil {
		return nil, s.fail(fmt.Sprintf("get consumer %q", id), err)
	}
	defer cancel()
	defer conn.Release()
	c, err := scanConsumer(conn.QueryRow(ctx, s.q.getConsumer, id))
	if err != nil {
		return nil, s.fail(fmt.Sprintf("get consumer %q", id), err)
	}
	return c, nil
}

// GetConsumerByName returns the consumer with the given name, or
// apikey.ErrNotFound.
func (s *Store) GetConsumerByName(ctx context.Context, name string) (*apikey.Consumer, error) {
	ctx, cancel, conn, err := s.conn(ctx)
	if err != nil {
		return nil, s.fail(fmt.Sprintf("get consumer by name %q", name), err)
	}
	defer cancel()
	defer conn.Release()
	c, err := scanConsumer(conn.QueryRow(ctx, s.q.getConsumerByName, name))
	if err != nil {
		return nil, s.fail(fmt.Sprintf("get consumer by name %q", name), err)
	}
	return c, nil
}

// ListConsumers returns every consumer, oldest first.
func (s *Store) ListConsumers(ctx context.Context) ([]*apikey.Consumer, error) {
	ctx, cancel, conn, err := s.conn(ctx)
	if err != nil {
		return nil, s.fail("list consumers", err)
	}
	defer cancel()
	defer conn.Release()
	rows, err := conn.Query(ctx, s.q.listConsumers)
	if err != nil {
		return nil, s.fail("list consumers", err)
	}
	cs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*apikey.Consumer, error) {
		return scanConsumer(row)
	})
	if err != nil {
		return nil, s.fail("list consumers", err)
	}
	return cs, nil
}

// DeleteConsumer removes the consumer and its keys in one transaction,
// notifying each deleted key id (see Options.OnChange). An unknown id is
// apikey.ErrNotFound.
func (s *Store) DeleteConsumer(ctx context.Context, id string) error {
	ctx, cancel, conn, err := s.conn(ctx)
	if err != nil {
		return s.fail(fmt.Sprintf("delete consumer %q", id), err)
	}
	defer cancel()
	defer conn.Release()
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, s.q.lockConsumer, id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return pgx.ErrNoRows
		}
		if _, err := tx.Exec(ctx, s.q.deleteConsumerKeys, id); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, s.q.deleteConsumer, id)
		return err
	})
	if err != nil {
		return s.fail(fmt.Sprintf("delete consumer %q", id), err)
	}
	return nil
}

// scanConsumer reads the columns of consumerCols.
func scanConsumer(row pgx.Row) (*apikey.Consumer, error) {
	c := new(apikey.Consumer)
	if err := row.Scan(consumerDest(c)...); err != nil {
		return nil, err
	}
	normalizeConsumer(c)
	return c, nil
}

func consumerDest(c *apikey.Consumer) []any {
	return []any{&c.ID, &c.Name, &c.Groups, &c.Tags, &c.Metadata, &c.CreatedAt}
}

// normalizeConsumer returns what was stored in the form it was given:
// empty lists and maps as nil, times in UTC.
func normalizeConsumer(c *apikey.Consumer) {
	c.Groups = nilIfEmpty(c.Groups)
	c.Tags = nilIfEmpty(c.Tags)
	if len(c.Metadata) == 0 {
		c.Metadata = nil
	}
	c.CreatedAt = c.CreatedAt.UTC()
}
