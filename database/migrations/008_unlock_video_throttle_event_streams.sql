-- Security hardening (issue #11, items 4 and 8).

-- Wrong video passwords per video across every account: a leaky bucket. Each wrong guess
-- adds 1 to level, which drains by 1 every UNLOCK_VIDEO_REFILL_SECONDS; at
-- UNLOCK_VIDEO_BURST further attempts wait (429). A per-(user, video) limit alone lets an
-- attacker guess on with fresh accounts.
CREATE TABLE unlock_video_throttle (
  video_id   CHAR(32)    NOT NULL PRIMARY KEY,
  level      DOUBLE      NOT NULL DEFAULT 0,
  updated_at DATETIME(6) NOT NULL,
  CONSTRAINT fk_unlock_video_throttle_video FOREIGN KEY (video_id) REFERENCES videos(id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Open progress streams (GET /api/videos/{id}/events) per user, across upload-svc processes
-- and replicas. A stream renews its lease while open and deletes its row when it ends; a
-- killed process's rows lapse with their lease.
CREATE TABLE event_streams (
  id          CHAR(32)    NOT NULL PRIMARY KEY,
  user_id     CHAR(32)    NOT NULL,
  opened_at   DATETIME(6) NOT NULL DEFAULT UTC_TIMESTAMP(6),
  lease_until DATETIME(6) NOT NULL,
  KEY ix_event_streams_user (user_id, lease_until),
  CONSTRAINT fk_event_streams_user FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
