-- A line's guest allergy ("sesame"), apart from its notes: what the kitchen was warned of.
ALTER TABLE docket.order_lines ADD COLUMN allergy text;
