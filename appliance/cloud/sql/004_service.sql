-- How an order left the kitchen and who took it, a rush, each guest's seat, and when a line
-- went to its station (null: with the order's placement, or never fired).
ALTER TABLE docket.orders ADD COLUMN rush boolean NOT NULL DEFAULT false;
ALTER TABLE docket.orders ADD COLUMN service text NOT NULL DEFAULT 'dine_in';
ALTER TABLE docket.orders ADD COLUMN server text;
ALTER TABLE docket.order_lines ADD COLUMN seat integer;
ALTER TABLE docket.order_lines ADD COLUMN fired_at timestamptz;
