-- Per-site sender details and policies, a recipient per follow-up step (sales alerts go to the
-- site's sales inbox, not to the lead), and when a lead confirmed a double opt-in.

ALTER TABLE sites ADD COLUMN postal_address TEXT;
ALTER TABLE sites ADD COLUMN sales_email TEXT;
ALTER TABLE sites ADD COLUMN double_opt_in INTEGER NOT NULL DEFAULT 0 CHECK (double_opt_in IN (0, 1));

ALTER TABLE follow_ups ADD COLUMN recipient TEXT; -- NULL: the lead

ALTER TABLE leads ADD COLUMN confirmed_at TEXT;
