-- Ingest (upload-svc): videos, resumable tus uploads and the processing job queue.

-- One row per video, from the first uploaded byte (status 'uploading') to deletion.
-- Object keys are ours (originals/{id}/..., media/{id}/...), never the user's file name;
-- original_filename is display-only (download name).
CREATE TABLE videos (
  id                CHAR(32)      NOT NULL PRIMARY KEY,
  owner_id          CHAR(32)      NOT NULL,
  title             VARCHAR(200)  NOT NULL,
  description       TEXT          NOT NULL,
  visibility        ENUM('public','private','password') NOT NULL DEFAULT 'private',
  password_hash     VARCHAR(255)  NULL,
  status            ENUM('uploading','queued','processing','ready','failed') NOT NULL DEFAULT 'uploading',
  status_message    VARCHAR(500)  NOT NULL DEFAULT '',
  original_key      VARCHAR(512)  NULL,
  original_filename VARCHAR(255)  NOT NULL DEFAULT '',
  content_type      VARCHAR(100)  NOT NULL DEFAULT 'application/octet-stream',
  size_bytes        BIGINT        NOT NULL DEFAULT 0,
  duration          DOUBLE        NULL,
  width             INT           NULL,
  height            INT           NULL,
  video_codec       VARCHAR(32)   NULL,
  audio_codec       VARCHAR(32)   NULL,
  container         VARCHAR(64)   NULL,
  thumbnail_key     VARCHAR(512)  NULL,
  views             BIGINT        NOT NULL DEFAULT 0,
  created_at        DATETIME(6)   NOT NULL DEFAULT UTC_TIMESTAMP(6),
  updated_at        DATETIME(6)   NOT NULL DEFAULT UTC_TIMESTAMP(6),
  ready_at          DATETIME(6)   NULL,
  KEY ix_videos_owner (owner_id, created_at),
  KEY ix_videos_library (status, visibility, created_at),
  CONSTRAINT fk_videos_owner FOREIGN KEY (owner_id) REFERENCES users(id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- A tus upload in progress, in the database so any replica can continue it after a
-- restart. Bytes live in an S3 multipart upload (s3_upload_id; committed parts with their
-- ETags in `parts`, JSON [{"n":1,"etag":"..","size":..}]) plus at most one part-sized
-- tail object (tail_key) for bytes that do not fill a part yet.
-- upload_offset = sum(parts.size) + tail_size. lock_* is a short lease held by the one
-- request currently writing (renewed while it streams), so replicas never interleave.
CREATE TABLE uploads (
  id               CHAR(32)      NOT NULL PRIMARY KEY,
  video_id         CHAR(32)      NOT NULL,
  owner_id         CHAR(32)      NOT NULL,
  upload_length    BIGINT        NOT NULL,
  upload_offset    BIGINT        NOT NULL DEFAULT 0,
  metadata         TEXT          NOT NULL,
  object_key       VARCHAR(512)  NOT NULL,
  s3_upload_id     VARCHAR(1024) NOT NULL,
  part_size        INT           NOT NULL,
  parts            MEDIUMTEXT    NOT NULL,
  tail_key         VARCHAR(512)  NULL,
  tail_size        INT           NOT NULL DEFAULT 0,
  status           ENUM('receiving','completing','done') NOT NULL DEFAULT 'receiving',
  lock_token       CHAR(32)      NULL,
  lock_expires_at  DATETIME(6)   NULL,
  created_at       DATETIME(6)   NOT NULL DEFAULT UTC_TIMESTAMP(6),
  updated_at       DATETIME(6)   NOT NULL DEFAULT UTC_TIMESTAMP(6),
  expires_at       DATETIME(6)   NOT NULL,
  UNIQUE KEY uq_uploads_video (video_id),
  KEY ix_uploads_owner (owner_id),
  KEY ix_uploads_expires (expires_at),
  CONSTRAINT fk_uploads_video FOREIGN KEY (video_id) REFERENCES videos(id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Work queue for the media workers (watermark-svc), claimed with
-- SELECT ... FOR UPDATE SKIP LOCKED; a lease (lease_owner, lease_expires_at) that runs out
-- makes a crashed worker's job claimable again, up to max_attempts.
CREATE TABLE jobs (
  id               CHAR(32)      NOT NULL PRIMARY KEY,
  video_id         CHAR(32)      NOT NULL,
  kind             VARCHAR(32)   NOT NULL,
  status           ENUM('queued','running','done','failed','cancelled') NOT NULL DEFAULT 'queued',
  priority         INT           NOT NULL DEFAULT 0,
  attempts         INT           NOT NULL DEFAULT 0,
  max_attempts     INT           NOT NULL DEFAULT 3,
  run_after        DATETIME(6)   NOT NULL DEFAULT UTC_TIMESTAMP(6),
  lease_owner      VARCHAR(128)  NULL,
  lease_expires_at DATETIME(6)   NULL,
  progress         DOUBLE        NOT NULL DEFAULT 0,
  step             VARCHAR(64)   NOT NULL DEFAULT '',
  error            TEXT          NULL,
  payload          TEXT          NULL,
  created_at       DATETIME(6)   NOT NULL DEFAULT UTC_TIMESTAMP(6),
  updated_at       DATETIME(6)   NOT NULL DEFAULT UTC_TIMESTAMP(6),
  finished_at      DATETIME(6)   NULL,
  KEY ix_jobs_claim (status, run_after, priority),
  KEY ix_jobs_lease (status, lease_expires_at),
  KEY ix_jobs_video (video_id),
  CONSTRAINT fk_jobs_video FOREIGN KEY (video_id) REFERENCES videos(id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
