-- Forensically watermarked downloads (docs/api.md "Downloads"): an owner allows them per
-- video (off by default); a playback session may be downloaded once, through a short-lived
-- single-use ticket whose SHA-256 is kept here (the ticket itself is only in the URL).
ALTER TABLE videos
  ADD COLUMN downloads_allowed TINYINT(1) NOT NULL DEFAULT 0;

ALTER TABLE playback_sessions
  ADD COLUMN download_ticket_sha256 BINARY(32) NULL,
  ADD COLUMN download_rendition VARCHAR(16) NULL,
  ADD COLUMN download_issued_at DATETIME(6) NULL,
  ADD COLUMN download_expires_at DATETIME(6) NULL,
  ADD COLUMN download_used_at DATETIME(6) NULL,
  ADD KEY ix_sessions_user_download (user_id, download_issued_at);
