-- Why a lead was judged spam (NULL: it was not). Spam is kept, for review, but never followed
-- up, never announced to webhooks, and not listed for sales unless asked for.

ALTER TABLE leads ADD COLUMN spam_reason TEXT;
