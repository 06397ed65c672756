-- Honest views and QoE analytics (issue 16 item 4; streaming-svc viewing.py, docs/api.md
-- "Views and QoE"). The player reports its session's quality of experience on heartbeats and
-- when the session ends; what is stored is what the server credits (capped by the time the
-- session has really existed), so a forged report cannot add watch time or views.

-- Per session: playing time credited (never more than the session's own age), startup time
-- (play intent to first frame), stalls (count and time), rendition switches, and which of
-- the video's twenty 5 % slices were watched (bit i = [5i %, 5i + 5 %) mostly played: the
-- owner's retention curve). viewed_at: when the session reached the view threshold (10 s
-- played, not the owner); counted_view says whether that view counted (0: the same viewer's
-- view of the video had counted in the 30 minutes before).
ALTER TABLE playback_sessions
  ADD COLUMN watch_ms         BIGINT       NOT NULL DEFAULT 0,
  ADD COLUMN startup_ms       INT          NULL,
  ADD COLUMN rebuffer_count   INT          NOT NULL DEFAULT 0,
  ADD COLUMN rebuffer_ms      BIGINT       NOT NULL DEFAULT 0,
  ADD COLUMN bitrate_switches INT          NOT NULL DEFAULT 0,
  ADD COLUMN watched_mask     INT UNSIGNED NOT NULL DEFAULT 0,
  ADD COLUMN qoe_reported_at  DATETIME(6)  NULL,
  ADD COLUMN viewed_at        DATETIME(6)  NULL;

-- Sessions counted under the old rule (one view per session) are decided.
UPDATE playback_sessions SET viewed_at = COALESCE(last_heartbeat_at, started_at) WHERE counted_view = 1;

-- The last counted view per viewer (the account: every playback is signed in) and video: a
-- view counts when this is at least 30 minutes old (one conditional UPDATE, so two sessions
-- of the same viewer reaching the threshold at once count one view).
CREATE TABLE video_viewers (
  video_id     CHAR(32)    NOT NULL,
  user_id      CHAR(32)    NOT NULL,
  last_view_at DATETIME(6) NOT NULL,
  PRIMARY KEY (video_id, user_id),
  CONSTRAINT fk_viewers_video FOREIGN KEY (video_id) REFERENCES videos(id) ON DELETE CASCADE,
  CONSTRAINT fk_viewers_user FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
