-- What the gateway knew but schema 2 dropped: the hash of an incident's
-- checked text, and a user report's categories, findings and comment hash.
-- Keep in step with ../postgres/0003_text_hashes_and_report_findings.sql.
-- Added with defaults, so rows written before this migration stay valid:
-- no hash (NULL) and empty JSON arrays.
-- Still no content: hashes, categories and findings only.

-- Lowercase hex SHA-256 of the checked text, so that repeats of one text can
-- be found without keeping it. NULL: no text was checked, or recorded before 3.
ALTER TABLE incidents ADD COLUMN text_sha256 TEXT;

-- The report's categories: the reason's, the engine's on pasted content and
-- the comment, and the reported response's incident's.
ALTER TABLE user_reports ADD COLUMN categories TEXT NOT NULL DEFAULT '[]';      -- JSON array of category names
-- The engine's findings on pasted content and the comment.
ALTER TABLE user_reports ADD COLUMN findings TEXT NOT NULL DEFAULT '[]';        -- JSON array of findings
-- Lowercase hex SHA-256 of the comment, when the comment itself was not kept.
ALTER TABLE user_reports ADD COLUMN comment_sha256 TEXT;
