-- The fleet view: which sites are live or stalled, how far behind they are, orders per hour and
-- speed of service per site and station. `docket fleet serve` and the Grafana dashboard
-- (docs/grafana/docket-fleet.json) read these, so both show the same numbers. Every result
-- leads with site_id. Views and functions only: the tables are the relay's.
--
-- Head office reads these (the schema owner, or a role it grants SELECT). Nothing is granted to
-- docket_site: a view reads as its owner, past row-level security, and a site must not see the
-- fleet. The functions run as their caller, so for a site's role they hold its own rows only.
--
-- Time windows are on docket.orders.placed_at, so the index orders_placed (site_id, placed_at)
-- bounds each site's scan, and lines are reached by their primary key's prefix.

-- A site is stalled when head office has not heard from it for longer than this. An idle box
-- still checks in every 60 s (docketd's relay keep-alive), so two minutes is two missed turns.
CREATE FUNCTION docket.stall_after() RETURNS interval
LANGUAGE sql IMMUTABLE AS $$ SELECT interval '2 minutes' $$;

-- One row per site. seconds_since_contact is the sync lag as head office can see it (a live
-- site checks in at least every minute). newest_event_at is the box's time of the newest event
-- relayed (the event at last_seq: a primary-key lookup per site, not a max() over the log).
CREATE VIEW docket.fleet_sites AS
SELECT s.site_id,
       CASE WHEN s.last_contact < now() - docket.stall_after() THEN 'stalled' ELSE 'live' END
           AS state,
       s.last_seq,
       s.last_contact,
       extract(epoch FROM now() - s.last_contact)::float8 AS seconds_since_contact,
       e.at AS newest_event_at,
       extract(epoch FROM now() - e.at)::float8 AS seconds_since_newest_event,
       s.docketd_version,
       o.orders AS orders_last_hour
FROM docket.sites s
LEFT JOIN LATERAL (
    SELECT ev.at FROM docket.events ev WHERE ev.site_id = s.site_id AND ev.seq = s.last_seq
) e ON true
CROSS JOIN LATERAL (
    SELECT count(*) AS orders FROM docket.orders od
    WHERE od.site_id = s.site_id AND od.placed_at >= now() - interval '1 hour'
) o;

-- Stalled sites, longest-stalled first: the alert list.
CREATE VIEW docket.fleet_alerts AS
SELECT site_id, last_contact, seconds_since_contact AS stalled_for_seconds, last_seq,
       docketd_version
FROM docket.fleet_sites
WHERE state = 'stalled'
ORDER BY last_contact ASC, site_id;

-- Orders placed per site per hour (UTC hours), for orders placed in [since, until).
CREATE FUNCTION docket.orders_per_hour_between(since timestamptz, until timestamptz)
RETURNS TABLE (site_id text, hour timestamptz, orders bigint)
LANGUAGE sql STABLE AS $$
    SELECT o.site_id, date_trunc('hour', o.placed_at, 'UTC') AS hour, count(*) AS orders
    FROM docket.orders o
    WHERE o.placed_at >= since AND o.placed_at < until
    GROUP BY 1, 2
$$;

-- The last 24 hours (this hour and the 23 before it).
CREATE VIEW docket.orders_per_hour AS
SELECT * FROM docket.orders_per_hour_between(
    date_trunc('hour', now(), 'UTC') - interval '23 hours', 'infinity');

-- Station tickets of orders placed in [since, until): one per order, station and firing (the
-- lines sent to a station together), done when all its lines that were not voided are ready.
-- A line's fired_at is null when it went with the order's placement. seconds: fired → the
-- station's last line ready.
CREATE FUNCTION docket.tickets_between(since timestamptz, until timestamptz)
RETURNS TABLE (site_id text, station text, order_id text, fired_at timestamptz,
               ready_at timestamptz, seconds float8)
LANGUAGE sql STABLE AS $$
    SELECT o.site_id, l.station, o.order_id,
           coalesce(l.fired_at, o.placed_at) AS fired_at,
           max(l.ready_at) AS ready_at,
           extract(epoch FROM max(l.ready_at) - coalesce(l.fired_at, o.placed_at))::float8
    FROM docket.orders o
    JOIN docket.order_lines l ON l.site_id = o.site_id AND l.order_id = o.order_id
    WHERE o.placed_at >= since AND o.placed_at < until AND l.status <> 'voided'
    GROUP BY o.site_id, l.station, o.order_id, coalesce(l.fired_at, o.placed_at)
    HAVING bool_and(l.status = 'ready' AND l.ready_at IS NOT NULL)
$$;

-- Speed of service per site, station and hour the ticket was fired: tickets and their p50 and
-- p90 seconds from fired to ready.
CREATE FUNCTION docket.speed_of_service_between(since timestamptz, until timestamptz)
RETURNS TABLE (site_id text, station text, hour timestamptz, tickets bigint,
               p50_seconds float8, p90_seconds float8)
LANGUAGE sql STABLE AS $$
    SELECT t.site_id, t.station, date_trunc('hour', t.fired_at, 'UTC') AS hour, count(*),
           percentile_cont(0.5) WITHIN GROUP (ORDER BY t.seconds),
           percentile_cont(0.9) WITHIN GROUP (ORDER BY t.seconds)
    FROM docket.tickets_between(since, until) t
    GROUP BY 1, 2, 3
$$;

-- The last 24 hours.
CREATE VIEW docket.speed_of_service AS
SELECT * FROM docket.speed_of_service_between(
    date_trunc('hour', now(), 'UTC') - interval '23 hours', 'infinity');
