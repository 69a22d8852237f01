package main

import (
	"context"
	"errors"
	"io"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// migrate creates the orders table when the seed SQL did not.
func migrate(ctx context.Context, db *pgxpool.Pool) error {
	_, err := db.Exec(ctx, `CREATE TABLE IF NOT EXISTS orders (
		id bigserial PRIMARY KEY,
		item text NOT NULL,
		quantity int NOT NULL CHECK (quantity > 0),
		created timestamptz NOT NULL DEFAULT now())`)
	return err
}

type pgOrders struct{ db *pgxpool.Pool }

func (p pgOrders) Add(ctx context.Context, o Order) (Order, error) {
	err := p.db.QueryRow(ctx, `INSERT INTO orders (item, quantity) VALUES ($1, $2) RETURNING id, created`,
		o.Item, o.Quantity).Scan(&o.ID, &o.Created)
	return o, err
}

func (p pgOrders) List(ctx context.Context) ([]Order, error) {
	rows, err := p.db.Query(ctx, `SELECT id, item, quantity, created FROM orders ORDER BY id`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[Order])
}

type s3Receipts struct {
	client *s3.Client
	bucket string
}

func (s s3Receipts) Put(ctx context.Context, key string, body io.Reader, size int64) error {
	in := &s3.PutObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key), Body: body}
	if size >= 0 {
		in.ContentLength = aws.Int64(size)
	}
	_, err := s.client.PutObject(ctx, in)
	return err
}

func (s s3Receipts) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)})
	var nsk *types.NoSuchKey
	if errors.As(err, &nsk) {
		return nil, errNotFound
	}
	if err != nil {
		return nil, err
	}
	return out.Body, nil
}
