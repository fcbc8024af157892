-- The demo source of deploy/compose.yaml (run once, when the data volume is new): two tables in
-- `shop`, and the empty `replica` database the pipeline writes into.
CREATE TABLE customers (
    id bigserial PRIMARY KEY,
    name text NOT NULL,
    email text,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE orders (
    id bigserial PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES customers (id),
    total numeric(12, 2) NOT NULL,
    status text NOT NULL DEFAULT 'new',
    updated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO customers (name, email) VALUES ('Grace', 'grace@example.com'), ('Linus', 'linus@example.com');
INSERT INTO orders (customer_id, total) VALUES (1, 42.00), (2, 7.50);

CREATE DATABASE replica;
