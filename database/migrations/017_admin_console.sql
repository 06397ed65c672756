-- The admin console (issue #15 item 4): per-user upload quotas, storage and views on the
-- dashboard.

-- A user's own upload quota in bytes, set by an administrator; NULL = the server default
-- (UPLOAD_QUOTA_BYTES), 0 = unlimited. upload-svc reads it on every upload it creates.
ALTER TABLE users ADD COLUMN upload_quota_bytes BIGINT NULL;

-- Bytes of a video's published media (every rung's A and B segments as stored: plaintext
-- size + 28 bytes of nonce and tag each, init segments, audio), written when the media is
-- published; the dashboard's storage figure sums it.
ALTER TABLE video_media ADD COLUMN media_bytes BIGINT NULL;

-- Rows published before this migration: the same sum from their metadata (renditions[].init_size
-- and segments.a/b[], audio.init_size and segment_sizes[]).
UPDATE video_media m SET m.media_bytes =
    COALESCE((SELECT SUM(r.init_size) FROM JSON_TABLE(m.metadata, '$.renditions[*]'
                  COLUMNS (init_size BIGINT PATH '$.init_size')) AS r), 0)
  + COALESCE((SELECT SUM(s.size + 28) FROM JSON_TABLE(m.metadata, '$.renditions[*]' COLUMNS (
                  NESTED PATH '$.segments.a[*]' COLUMNS (size BIGINT PATH '$'))) AS s), 0)
  + COALESCE((SELECT SUM(s.size + 28) FROM JSON_TABLE(m.metadata, '$.renditions[*]' COLUMNS (
                  NESTED PATH '$.segments.b[*]' COLUMNS (size BIGINT PATH '$'))) AS s), 0)
  + COALESCE(JSON_VALUE(m.metadata, '$.audio.init_size'), 0)
  + COALESCE((SELECT SUM(s.size + 28) FROM JSON_TABLE(m.metadata, '$.audio.segment_sizes[*]'
                  COLUMNS (size BIGINT PATH '$')) AS s), 0)
  WHERE m.media_bytes IS NULL AND JSON_VALID(m.metadata);

-- The dashboard's views per day and the security console's newest sessions (started_at),
-- and its count of live sessions (ended_at IS NULL AND expires_at > now).
ALTER TABLE playback_sessions
  ADD INDEX ix_sessions_started (started_at),
  ADD INDEX ix_sessions_live (ended_at, expires_at);
