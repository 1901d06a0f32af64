-- Per-site roles. A box relays as `docket_site_<site_id>`, a member of `docket_site`, which may
-- insert (and, for the projections, update) rows; row-level security restricts every such role
-- to rows whose site_id is its own. Head office reads as the schema owner (or any role with
-- BYPASSRLS), for which the policies do not apply.
--
-- Create (or re-key) a site's role, as a role with CREATEROLE:
--   SELECT docket.create_site_role('bistro-12', 'a long random password');
-- then give the box: postgres://docket_site_bistro-12:PASSWORD@host/db?sslmode=require

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'docket_site') THEN
        CREATE ROLE docket_site NOLOGIN;
    END IF;
END
$$;

GRANT USAGE ON SCHEMA docket TO docket_site;
GRANT SELECT, INSERT ON docket.events TO docket_site;
GRANT SELECT, INSERT, UPDATE ON docket.orders, docket.order_lines, docket.sites TO docket_site;

-- The site a connection may write: from its role name, or null (no rows) for anyone else.
CREATE FUNCTION docket.current_site() RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN current_user LIKE 'docket\_site\_%' THEN substr(current_user, 13) END
$$;

ALTER TABLE docket.events ENABLE ROW LEVEL SECURITY;
ALTER TABLE docket.orders ENABLE ROW LEVEL SECURITY;
ALTER TABLE docket.order_lines ENABLE ROW LEVEL SECURITY;
ALTER TABLE docket.sites ENABLE ROW LEVEL SECURITY;

CREATE POLICY own_site ON docket.events TO docket_site
    USING (site_id = docket.current_site()) WITH CHECK (site_id = docket.current_site());
CREATE POLICY own_site ON docket.orders TO docket_site
    USING (site_id = docket.current_site()) WITH CHECK (site_id = docket.current_site());
CREATE POLICY own_site ON docket.order_lines TO docket_site
    USING (site_id = docket.current_site()) WITH CHECK (site_id = docket.current_site());
CREATE POLICY own_site ON docket.sites TO docket_site
    USING (site_id = docket.current_site()) WITH CHECK (site_id = docket.current_site());

CREATE FUNCTION docket.create_site_role(site text, password text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    role_name text := 'docket_site_' || site;
BEGIN
    IF site !~ '^[a-z0-9_-]{1,32}$' THEN
        RAISE EXCEPTION 'site id % is not 1-32 of a-z 0-9 - _', site;
    END IF;
    IF length(password) < 16 THEN
        RAISE EXCEPTION 'use a password of at least 16 characters';
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = role_name) THEN
        EXECUTE format('ALTER ROLE %I LOGIN PASSWORD %L', role_name, password);
    ELSE
        EXECUTE format('CREATE ROLE %I LOGIN PASSWORD %L IN ROLE docket_site', role_name, password);
    END IF;
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), role_name);
    RETURN role_name;
END
$$;
