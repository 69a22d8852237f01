-- Runs once, on the environment's empty database (mocks.postgres.seed).
CREATE TABLE IF NOT EXISTS orders (
  id bigserial PRIMARY KEY,
  item text NOT NULL,
  quantity int NOT NULL CHECK (quantity > 0),
  created timestamptz NOT NULL DEFAULT now()
);
