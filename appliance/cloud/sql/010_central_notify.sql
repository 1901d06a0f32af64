-- Boxes take head office's menus and 86s as they are made, not at their next look: a NOTIFY on
-- channel docket_central when a central menu or an 86 is inserted, or a site's brand is set.
-- Each box LISTENs on its menus connection and looks (its poll stays, as the backstop for a
-- notification lost with a connection).
--
-- The payload is empty, here and now for docket_inbound too (which carried the site's id):
-- every site's role may LISTEN on a channel, and a notification's payload is not filtered by
-- row-level security, so a site id in it told every box which other sites got orders, and
-- when. A box looks at its own rows whatever woke it. Notifications of one transaction with
-- the same payload are delivered once, so a bulk insert wakes each box once.

CREATE FUNCTION docket.central_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('docket_central', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER central_menus_notify AFTER INSERT ON docket.central_menus
    FOR EACH ROW EXECUTE FUNCTION docket.central_notify();
CREATE TRIGGER central_stock_notify AFTER INSERT ON docket.central_stock
    FOR EACH ROW EXECUTE FUNCTION docket.central_notify();
CREATE TRIGGER site_brands_notify AFTER INSERT OR UPDATE ON docket.site_brands
    FOR EACH ROW EXECUTE FUNCTION docket.central_notify();

CREATE OR REPLACE FUNCTION docket.inbound_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('docket_inbound', '');
    RETURN NULL;
END
$$;
