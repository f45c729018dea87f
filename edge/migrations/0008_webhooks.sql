-- Webhook subscriptions per site (Standard Webhooks: a whsec_ secret each), and the outbox and
-- log of their deliveries: written in the same D1 batch as the event's cause, sent from the
-- queue, retried with backoff, kept for the delivery log.

CREATE TABLE webhook_subscriptions (
    id         TEXT PRIMARY KEY, -- "wh_" and 16 hex digits
    site_id    TEXT NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    url        TEXT NOT NULL,
    events     TEXT NOT NULL,    -- space-separated: lead.created lead.hot lead.status_changed
    secret     TEXT NOT NULL,    -- whsec_<base64>
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
) STRICT;
CREATE INDEX webhook_subscriptions_by_site ON webhook_subscriptions (site_id);

CREATE TABLE webhook_deliveries (
    id              TEXT PRIMARY KEY, -- "msg_…": the webhook-id header, the same on every attempt
    subscription_id TEXT NOT NULL REFERENCES webhook_subscriptions (id) ON DELETE CASCADE,
    lead_id         TEXT,             -- the lead it is about (erasure clears its payload)
    event           TEXT NOT NULL,
    payload         TEXT NOT NULL,    -- the exact JSON body, signed anew at each attempt
    state           TEXT NOT NULL DEFAULT 'scheduled'
        CHECK (state IN ('scheduled', 'queued', 'sending', 'delivered', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    due_at          INTEGER NOT NULL, -- Unix ms
    last_status     INTEGER,          -- the subscriber's last HTTP status, if it answered
    last_error      TEXT,
    created_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at      INTEGER NOT NULL  -- Unix ms
) STRICT;
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (state, due_at);
CREATE INDEX webhook_deliveries_log ON webhook_deliveries (subscription_id, created_at);

-- A lead as events carry it (the Sales API's list item), built where the row is.
CREATE VIEW lead_event_json AS
SELECT id, json_object(
    'id', id, 'created_at', created_at, 'site_id', site_id, 'form_id', form_id,
    'status', status, 'grade', grade, 'score', score, 'email', email, 'name', name,
    'company', company, 'phone', phone, 'message', message, 'channel', channel,
    'assignee', assignee, 'tags', json(tags)) AS lead
FROM leads;
