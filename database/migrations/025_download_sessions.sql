-- A playback session opened only to download the video (docs/api.md "Downloads"): it is
-- given no segment keys, so it cannot stream, does not count toward MAX_CONCURRENT_STREAMS,
-- and ends (end_reason 'downloaded') once its download starts.
ALTER TABLE playback_sessions
  ADD COLUMN purpose ENUM('playback', 'download') NOT NULL DEFAULT 'playback';
