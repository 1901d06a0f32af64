-- Docket head-office schema, version 1. Applied by `docketd uplink migrate` (idempotently: each
-- numbered file runs once, recorded in docket.schema_migrations, under an advisory lock).
-- Every row carries its site_id; a box relays with a per-site role (see 002_site_roles.sql)
-- that row-level security keeps to its own site's rows.
--
-- The per-site tables are created IF NOT EXISTS here and in 005-007: on a head office started
-- partitioned (`docketd uplink migrate --partitions N`), sql/partitioned/ created them already,
-- partitioned by site, with the same columns and keys, and the rest of each file applies to
-- them unchanged. On a plain database the tables do not exist yet, so nothing differs.

CREATE SCHEMA IF NOT EXISTS docket;

-- One row per site: how far its relay got and when it was last heard from.
CREATE TABLE IF NOT EXISTS docket.sites (
    site_id         text PRIMARY KEY,
    last_seq        bigint NOT NULL DEFAULT 0,
    last_contact    timestamptz NOT NULL DEFAULT now(),
    docketd_version text
);

-- The record: every event of every site, once, keyed by (site_id, seq). body is the event as
-- the box published it (docs/protocol.md, `event`), as JSON.
CREATE TABLE IF NOT EXISTS docket.events (
    site_id  text NOT NULL,
    seq      bigint NOT NULL,
    type     text NOT NULL,
    order_id text NOT NULL,
    version  bigint NOT NULL,
    device   text NOT NULL,
    at       timestamptz NOT NULL,
    body     jsonb NOT NULL,
    PRIMARY KEY (site_id, seq)
);
CREATE INDEX events_order ON docket.events (site_id, order_id);

-- Projections kept by the relay in the same transaction as the events: each order's latest
-- state (by version) ...
CREATE TABLE IF NOT EXISTS docket.orders (
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
);
CREATE INDEX orders_placed ON docket.orders (site_id, placed_at);

-- ... and its lines. unit_price_cents is the box's menu price when the line was relayed;
-- ready_at is when its station bumped it (null unless status = 'ready').
CREATE TABLE IF NOT EXISTS docket.order_lines (
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
);

-- Head office's questions.

-- Sales per site per day (UTC), voided lines excluded.
CREATE VIEW docket.sales_per_site_day AS
SELECT o.site_id,
       (o.placed_at AT TIME ZONE 'UTC')::date AS day,
       count(DISTINCT o.order_id) AS orders,
       coalesce(sum(l.qty * l.unit_price_cents) FILTER (WHERE l.status <> 'voided'), 0) AS sales_cents
FROM docket.orders o
JOIN docket.order_lines l USING (site_id, order_id)
GROUP BY o.site_id, day;

-- Ticket times per station: placed → bumped (the station's last line ready), p50 and p90.
CREATE VIEW docket.ticket_times_per_station AS
WITH tickets AS (
    SELECT l.site_id, l.station, l.order_id,
           extract(epoch FROM max(l.ready_at) - min(o.placed_at)) AS seconds
    FROM docket.order_lines l
    JOIN docket.orders o USING (site_id, order_id)
    WHERE l.status <> 'voided'
    GROUP BY l.site_id, l.station, l.order_id
    HAVING bool_and(l.status = 'ready')
)
SELECT site_id, station,
       count(*) AS tickets,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds) AS p50_seconds,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY seconds) AS p90_seconds
FROM tickets
GROUP BY site_id, station;

-- Voids per site per day (UTC): lines and their value.
CREATE VIEW docket.voids_per_site AS
SELECT o.site_id,
       (o.placed_at AT TIME ZONE 'UTC')::date AS day,
       count(*) AS voided_lines,
       coalesce(sum(l.qty * l.unit_price_cents), 0) AS voided_cents
FROM docket.order_lines l
JOIN docket.orders o USING (site_id, order_id)
WHERE l.status = 'voided'
GROUP BY o.site_id, day;

-- Sites not heard from for more than 10 minutes.
CREATE VIEW docket.silent_sites AS
SELECT site_id, last_seq, last_contact, now() - last_contact AS silent_for
FROM docket.sites
WHERE last_contact < now() - interval '10 minutes';
