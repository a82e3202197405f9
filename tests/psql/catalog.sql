-- Setup for the psql meta-command catalog test (tests/psql/catalog.expected.d/).
-- Run once with `psql -X -v ON_ERROR_STOP=1 -f catalog.sql` against database `quiver`,
-- then run each meta-command in tests/psql/catalog.commands in its own psql invocation
-- (`psql -X -c '<meta-command>'`) and compare with catalog.expected.d/<name>.out.
-- Expected output was recorded on PostgreSQL 15.18 (user postgres, locale C.UTF-8).
CREATE TABLE city (
    id integer PRIMARY KEY,
    name varchar(40) NOT NULL,
    country char(2),
    population bigint DEFAULT 0,
    area numeric(10,2),
    founded date,
    note text
);
CREATE TABLE measurement (
    city_id integer NOT NULL,
    at timestamptz NOT NULL,
    temp double precision,
    ok boolean DEFAULT true,
    UNIQUE (city_id, at)
);
CREATE VIEW big_city AS SELECT id, name FROM city WHERE population > 1000000;
CREATE SCHEMA sales;
CREATE TABLE sales.orders (
    id bigint PRIMARY KEY,
    amount numeric(12,2) CHECK (amount >= 0),
    tags text
);
INSERT INTO city VALUES
    (1, 'Oslo', 'NO', 709037, 454.03, '1040-01-01', 'capital'),
    (2, 'Rome', 'IT', 2761632, 1285.00, NULL, NULL),
    (3, 'Bergen', 'NO', 291940, 465.30, '1070-01-01', 'rainy');
INSERT INTO measurement VALUES
    (1, '2024-07-01 12:00:00+00', 21.5, true),
    (2, '2024-07-01 12:00:00+00', 31.25, DEFAULT);
INSERT INTO sales.orders VALUES (1, 19.99, 'a,b'), (2, 0, NULL);
