-- Partitioned head office, before 007_central_menus: which brand a site belongs to is per site,
-- so partitioned by hash of site_id. The brand's own tables (central_menus, central_stock) are
-- head office's reference data, the same for every site: they stay whole.
CREATE TABLE docket.site_brands (
    site_id text PRIMARY KEY,
    brand   text NOT NULL CHECK (brand ~ '^[a-z0-9_-]{1,32}$')
) PARTITION BY HASH (site_id);
