-- Menus from head office: versions of a menu for a whole brand or for one site, and 86s (or
-- back on) for a brand or a site. Boxes read them as their site role and take them into their
-- own menu (docs/operations.md, "Menus from head office"); only head office writes them (the
-- schema owner or any role with BYPASSRLS: a site role has SELECT, nothing more).
--
-- Which brand a site belongs to is its own table, not a column of docket.sites: a site role
-- may update its own docket.sites row (last_seq, contact), and must not move itself to another
-- brand's menus.
CREATE TABLE IF NOT EXISTS docket.site_brands (
    site_id text PRIMARY KEY,
    brand   text NOT NULL CHECK (brand ~ '^[a-z0-9_-]{1,32}$')
);

-- One version of a brand's menu (site_id null) or of one site's own (site_id set: it beats
-- the brand's for that site, whatever their versions). items: a JSON array of menu items in
-- the shape docket.menus has them (docs/protocol.md, `menu`).
CREATE TABLE docket.central_menus (
    brand      text NOT NULL CHECK (brand ~ '^[a-z0-9_-]{1,32}$'),
    site_id    text,
    version    bigint NOT NULL CHECK (version > 0),
    items      jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX central_menus_brand_version ON docket.central_menus (brand, version)
    WHERE site_id IS NULL;
CREATE UNIQUE INDEX central_menus_site_version ON docket.central_menus (site_id, version)
    WHERE site_id IS NOT NULL;

-- An item 86'd (out) or back on, for a whole brand (site_id null) or one site. Boxes take
-- them in id order after the last one they took.
CREATE TABLE docket.central_stock (
    id      bigserial PRIMARY KEY,
    brand   text NOT NULL CHECK (brand ~ '^[a-z0-9_-]{1,32}$'),
    site_id text,
    item    text NOT NULL,
    out     boolean NOT NULL,
    at      timestamptz NOT NULL DEFAULT now()
);

-- A box reads 86s after the highest id it took: ids must rise in commit order, or a row that
-- commits after a higher one would be skipped. Inserts take turns on an advisory lock held to
-- their commit, and each takes its id only once it holds it (the default's value is replaced).
CREATE FUNCTION docket.central_stock_id() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('docket.central_stock', 0));
    NEW.id := nextval(pg_get_serial_sequence('docket.central_stock', 'id'));
    RETURN NEW;
END
$$;

CREATE TRIGGER central_stock_id BEFORE INSERT ON docket.central_stock
    FOR EACH ROW EXECUTE FUNCTION docket.central_stock_id();

-- The brand of the connecting site's role (null for anyone else, or a site without a brand).
CREATE FUNCTION docket.current_brand() RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT brand FROM docket.site_brands WHERE site_id = docket.current_site()
$$;

GRANT SELECT ON docket.site_brands, docket.central_menus, docket.central_stock TO docket_site;
ALTER TABLE docket.site_brands ENABLE ROW LEVEL SECURITY;
ALTER TABLE docket.central_menus ENABLE ROW LEVEL SECURITY;
ALTER TABLE docket.central_stock ENABLE ROW LEVEL SECURITY;

CREATE POLICY own_site ON docket.site_brands FOR SELECT TO docket_site
    USING (site_id = docket.current_site());
CREATE POLICY own_site_or_brand ON docket.central_menus FOR SELECT TO docket_site
    USING (site_id = docket.current_site()
           OR (site_id IS NULL AND brand = docket.current_brand()));
CREATE POLICY own_site_or_brand ON docket.central_stock FOR SELECT TO docket_site
    USING (site_id = docket.current_site()
           OR (site_id IS NULL AND brand = docket.current_brand()));
