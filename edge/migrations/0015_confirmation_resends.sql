-- A double opt-in confirmation is sent again when the person sends the form again before
-- confirming (the first was lost, or filtered as junk): at most twice, and not within ten
-- minutes of the last (shared::followup::CONFIRM_RESENDS, CONFIRM_RESEND_AFTER_MS). How many
-- times the step was armed again; each sending gets its own idempotency key from it.

ALTER TABLE follow_ups ADD COLUMN resent INTEGER NOT NULL DEFAULT 0;
