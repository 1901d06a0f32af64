-- Orders from outside, down to a site's kitchen: online, delivery and kiosk orders that reach
-- head office. Head office inserts a row per order; the site's box pulls its own rows after its
-- cursor (woken by NOTIFY docket_inbound, polling as the backstop), applies each once as a
-- command of its `integration` device and writes what became of it to docket.inbound_results.
--
--   INSERT INTO docket.inbound_orders (site_id, source, source_id, payload)
--   VALUES ('bistro-12', 'deliveroo', 'DR-4411',
--           '{"service":"delivery","lines":[{"item":"burger-classic","qty":1}]}');
--
-- `seq` is given by the trigger below: per site, gapless, in commit order (inserts for one site
-- take turns on an advisory lock held to their commit), so a box's cursor never skips a row
-- that commits late. (source, source_id) is an order's identity: the same order inserted again
-- is refused (ON CONFLICT DO NOTHING to make it idempotent), and the box applies it once.

CREATE TABLE IF NOT EXISTS docket.inbound_orders (
    site_id    text NOT NULL,
    seq        bigint NOT NULL,
    source     text NOT NULL CHECK (char_length(source) BETWEEN 1 AND 16),
    source_id  text NOT NULL CHECK (char_length(source_id) BETWEEN 1 AND 32),
    payload    jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (site_id, seq),
    UNIQUE (site_id, source, source_id)
);

CREATE FUNCTION docket.inbound_seq() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- One insert per site at a time, to its commit: seq order is commit order.
    PERFORM pg_advisory_xact_lock(hashtextextended('docket.inbound:' || NEW.site_id, 0));
    SELECT coalesce(max(seq), 0) + 1 INTO NEW.seq
      FROM docket.inbound_orders WHERE site_id = NEW.site_id;
    RETURN NEW;
END
$$;

CREATE TRIGGER inbound_seq BEFORE INSERT ON docket.inbound_orders
    FOR EACH ROW EXECUTE FUNCTION docket.inbound_seq();

CREATE FUNCTION docket.inbound_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('docket_inbound', NEW.site_id);
    RETURN NULL;
END
$$;

CREATE TRIGGER inbound_notify AFTER INSERT ON docket.inbound_orders
    FOR EACH ROW EXECUTE FUNCTION docket.inbound_notify();

-- What the box made of each inbound order: the order (id, ticket) or the reason it refused it
-- (a docket reject code and message: unknown_item, sold_out, ...). Written once per row.
CREATE TABLE IF NOT EXISTS docket.inbound_results (
    site_id    text NOT NULL,
    seq        bigint NOT NULL,
    ok         boolean NOT NULL,
    order_id   text,
    ticket     bigint,
    code       text,
    message    text,
    applied_at timestamptz NOT NULL,
    PRIMARY KEY (site_id, seq),
    FOREIGN KEY (site_id, seq) REFERENCES docket.inbound_orders (site_id, seq)
);

-- A site reads its own inbound orders and cannot write them; it writes its own results.
GRANT SELECT ON docket.inbound_orders TO docket_site;
GRANT SELECT, INSERT ON docket.inbound_results TO docket_site;
ALTER TABLE docket.inbound_orders ENABLE ROW LEVEL SECURITY;
ALTER TABLE docket.inbound_results ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_site ON docket.inbound_orders TO docket_site
    USING (site_id = docket.current_site());
CREATE POLICY own_site ON docket.inbound_results TO docket_site
    USING (site_id = docket.current_site()) WITH CHECK (site_id = docket.current_site());
