-- Partitioned head office, before 001_schema: its per-site tables, partitioned by hash of
-- site_id. Each is 001's table exactly (columns, order, keys), plus PARTITION BY; the runner
-- then adds the hash partitions and applies 001 itself, whose CREATE TABLE IF NOT EXISTS
-- leaves these be. A change here must match 001 (the partitioned test compares the two).

CREATE SCHEMA IF NOT EXISTS docket;

CREATE TABLE docket.sites (
    site_id         text PRIMARY KEY,
    last_seq        bigint NOT NULL DEFAULT 0,
    last_contact    timestamptz NOT NULL DEFAULT now(),
    docketd_version text
) PARTITION BY HASH (site_id);

CREATE TABLE docket.events (
    site_id  text NOT NULL,
    seq      bigint NOT NULL,
    type     text NOT NULL,
    order_id text NOT NULL,
    version  bigint NOT NULL,
    device   text NOT NULL,
    at       timestamptz NOT NULL,
    body     jsonb NOT NULL,
    PRIMARY KEY (site_id, seq)
) PARTITION BY HASH (site_id);

CREATE TABLE docket.orders (
    site_id      text NOT NULL,
    order_id     text NOT NULL,
    ticket       bigint NOT NULL,
    table_name   text NOT NULL,
    status       text NOT NULL,
    version      bigint NOT NULL,
    fired_course integer NOT NULL,
    placed_at    timestamptz NOT NULL,
    completed_at timestamptz,
    updated_at   timestamptz NOT NULL,
    PRIMARY KEY (site_id, order_id)
) PARTITION BY HASH (site_id);

CREATE TABLE docket.order_lines (
    site_id          text NOT NULL,
    order_id         text NOT NULL,
    n                integer NOT NULL,
    item             text NOT NULL,
    name             text NOT NULL,
    qty              integer NOT NULL,
    mods             jsonb NOT NULL,
    notes            text,
    course           integer NOT NULL,
    station          text NOT NULL,
    status           text NOT NULL,
    unit_price_cents bigint,
    ready_at         timestamptz,
    version          bigint NOT NULL,
    PRIMARY KEY (site_id, order_id, n)
) PARTITION BY HASH (site_id);
