-- Playback (streaming-svc): sessions with their sealed keys, password grants, unlock throttling.

-- One row per playback session. Keys are sealed (AES-256-GCM) under STREAM_MASTER_KEY so any
-- streaming replica can serve any session: kek_enc is the HKDF-derived key-encryption key
-- (new epochs' CEKs are wrapped under it for the client; the server's ECDH private key is
-- never stored), cek_enc the current epoch's content key, prev_cek_enc the previous epoch's,
-- still honoured for KEY_GRACE_SECONDS after a rotation so segments in flight decrypt.
-- The forensic codeword is derived from (WATERMARK_SECRET, id) — see svcommon.codeword —
-- so only the session's facts are stored here; watermark-svc matches leaks against them.
CREATE TABLE playback_sessions (
  id                CHAR(32)      NOT NULL PRIMARY KEY,
  video_id          CHAR(32)      NOT NULL,
  user_id           CHAR(32)      NOT NULL,
  device_id         CHAR(32)      NULL,
  jkt               CHAR(43)      NOT NULL,
  ip                VARCHAR(64)   NULL,
  user_agent        VARCHAR(512)  NULL,
  kek_enc           VARBINARY(80) NOT NULL,
  cek_enc           VARBINARY(80) NOT NULL,
  prev_cek_enc      VARBINARY(80) NULL,
  key_epoch         INT           NOT NULL DEFAULT 0,
  epoch_started_at  DATETIME(6)   NOT NULL,
  codeword_length   INT           NOT NULL,
  tag_issued_at     BIGINT        NOT NULL,
  started_at        DATETIME(6)   NOT NULL DEFAULT UTC_TIMESTAMP(6),
  expires_at        DATETIME(6)   NOT NULL,
  last_heartbeat_at DATETIME(6)   NULL,
  ended_at          DATETIME(6)   NULL,
  end_reason        VARCHAR(32)   NULL,
  position          DOUBLE        NOT NULL DEFAULT 0,
  counted_view      TINYINT(1)    NOT NULL DEFAULT 0,
  KEY ix_sessions_user_live (user_id, ended_at, expires_at),
  KEY ix_sessions_video (video_id, started_at),
  CONSTRAINT fk_sessions_video FOREIGN KEY (video_id) REFERENCES videos(id) ON DELETE CASCADE,
  CONSTRAINT fk_sessions_user FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- A correct video password grants this user access to that video until expires_at (1 hour).
CREATE TABLE video_access_grants (
  user_id    CHAR(32)    NOT NULL,
  video_id   CHAR(32)    NOT NULL,
  granted_at DATETIME(6) NOT NULL DEFAULT UTC_TIMESTAMP(6),
  expires_at DATETIME(6) NOT NULL,
  PRIMARY KEY (user_id, video_id),
  CONSTRAINT fk_grants_video FOREIGN KEY (video_id) REFERENCES videos(id) ON DELETE CASCADE,
  CONSTRAINT fk_grants_user FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Wrong video passwords per (user, video) in a sliding window; at the limit → locked_until.
CREATE TABLE unlock_throttle (
  user_id      CHAR(32)    NOT NULL,
  video_id     CHAR(32)    NOT NULL,
  failures     INT         NOT NULL DEFAULT 0,
  window_start DATETIME(6) NOT NULL,
  locked_until DATETIME(6) NULL,
  PRIMARY KEY (user_id, video_id),
  CONSTRAINT fk_unlock_video FOREIGN KEY (video_id) REFERENCES videos(id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
