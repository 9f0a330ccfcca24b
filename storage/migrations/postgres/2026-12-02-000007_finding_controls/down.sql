ALTER TABLE findings DROP COLUMN controls;
