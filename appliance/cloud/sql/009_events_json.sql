-- docket.events.body becomes json: the event's text as the relay sent it, checked to be JSON,
-- instead of jsonb's parsed and re-sorted form. Head office keeps the events as its record and
-- reads them through the projections (docket.orders, docket.order_lines), never by body, so
-- parsing each ~1.6 KB body into jsonb was the largest single cost of taking events in: about
-- a fifth of PostgreSQL's CPU when a hundred sites catch up at once (docs/benchmarks.md, "The
-- fleet"). -> and ->> work on json as on jsonb; a query using jsonb's own operators (@>, ?) or
-- a GIN index casts: body::jsonb.
--
-- Changing the type rewrites the table under a lock that holds the relays (28 s per million
-- events on two cores). So it is done here only while docket.events holds fewer than a million
-- events; a bigger head office keeps jsonb, which the relays write as well (json converts to
-- jsonb on insert), until its operator converts it in a quiet hour (docs/operations.md,
-- "Upgrading head office to 009_events_json"). On a partitioned head office the partitions
-- follow the parent.
DO $$
BEGIN
    IF (SELECT format_type(atttypid, atttypmod) FROM pg_attribute
         WHERE attrelid = 'docket.events'::regclass AND attname = 'body') <> 'jsonb' THEN
        RETURN;
    END IF;
    IF (SELECT count(*) FROM (SELECT 1 FROM docket.events LIMIT 1000000) AS first_million) < 1000000 THEN
        ALTER TABLE docket.events ALTER COLUMN body TYPE json USING body::json;
    ELSE
        RAISE NOTICE 'docket.events holds a million events or more: body stays jsonb; '
            'convert it in a quiet hour (docs/operations.md, "Upgrading head office to 009_events_json")';
    END IF;
END
$$;
