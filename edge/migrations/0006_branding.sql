-- A site's brand in its emails: a logo shown at the top and an accent colour.

ALTER TABLE sites ADD COLUMN logo_url TEXT;
ALTER TABLE sites ADD COLUMN brand_color TEXT;
