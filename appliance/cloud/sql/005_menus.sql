-- Every version of each site's menu: the seeds from its menu file and the edits made on the box
-- (an item 86'd or back, added, changed, removed), with the device and command that made each.
CREATE TABLE IF NOT EXISTS docket.menus (
    site_id    text NOT NULL,
    version    bigint NOT NULL,
    items      jsonb NOT NULL,
    changed_at timestamptz NOT NULL,
    device     text NOT NULL,
    command    text NOT NULL,
    PRIMARY KEY (site_id, version)
);

GRANT SELECT, INSERT ON docket.menus TO docket_site;
ALTER TABLE docket.menus ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_site ON docket.menus TO docket_site
    USING (site_id = docket.current_site()) WITH CHECK (site_id = docket.current_site());
