-- Partitioned head office, before 006_inbound: 006's tables, partitioned by hash of site_id.
-- Both keys lead with site_id, so a result and its order land in partitions of the same number
-- and the foreign key (PostgreSQL 12+ to a partitioned table) stays within a site. 006's BEFORE
-- INSERT trigger (PostgreSQL 13+ on a partitioned table) sets seq, never site_id, so it cannot
-- move a row to another partition.
CREATE TABLE docket.inbound_orders (
    site_id    text NOT NULL,
    seq        bigint NOT NULL,
    source     text NOT NULL CHECK (char_length(source) BETWEEN 1 AND 16),
    source_id  text NOT NULL CHECK (char_length(source_id) BETWEEN 1 AND 32),
    payload    jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (site_id, seq),
    UNIQUE (site_id, source, source_id)
) PARTITION BY HASH (site_id);

CREATE TABLE docket.inbound_results (
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
) PARTITION BY HASH (site_id);
