-- Which request first made a lead hot (its `submissions.request_id`): the one that created it
-- hot, or a resubmission that turned it hot. Subscribers hear `lead.hot` from that request
-- only, so once per lead however often the person sends the form again.
ALTER TABLE leads ADD COLUMN hot_request TEXT;

-- Leads already hot were made hot by the request that created them (whose request id is the
-- lead's id, as in 0011's backfill of `submissions`).
UPDATE leads SET hot_request = id WHERE grade = 'hot';
