-- A site's own follow-up sequences (JSON, a leadglue_shared::followup::Sequences; NULL: the
-- defaults) and the URL its webhook steps are POSTed to.

ALTER TABLE sites ADD COLUMN sequences TEXT;
ALTER TABLE sites ADD COLUMN webhook_url TEXT;
