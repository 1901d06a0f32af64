-- Partitioned head office, before 005_menus: 005's table, partitioned by hash of site_id.
CREATE TABLE docket.menus (
    site_id    text NOT NULL,
    version    bigint NOT NULL,
    items      jsonb NOT NULL,
    changed_at timestamptz NOT NULL,
    device     text NOT NULL,
    command    text NOT NULL,
    PRIMARY KEY (site_id, version)
) PARTITION BY HASH (site_id);
