-- Forensics (watermark-svc): leak detections. Each row is both the stored record an admin
-- lists and the work queue entry the workers claim (SELECT ... FOR UPDATE SKIP LOCKED with
-- a lease, like `jobs`; a separate table because a detection may have no video yet —
-- the catalogue match finds it — and jobs.video_id is a required foreign key).
-- No foreign keys to videos/sessions/users: evidence must outlive a deleted video or
-- account, so `result` keeps a snapshot of everything the report shows.
CREATE TABLE detections (
  id                 CHAR(32)      NOT NULL PRIMARY KEY,
  requested_video_id CHAR(32)      NULL,
  video_id           CHAR(32)      NULL,        -- the video it turned out to be
  status             ENUM('queued','running','done','failed') NOT NULL DEFAULT 'queued',
  progress           DOUBLE        NOT NULL DEFAULT 0,
  step               VARCHAR(64)   NOT NULL DEFAULT 'queued',
  suspect_key        VARCHAR(512)  NOT NULL,   -- forensics/detections/{id}/suspect
  suspect_name       VARCHAR(255)  NOT NULL DEFAULT '',
  suspect_size       BIGINT        NOT NULL DEFAULT 0,
  suspect_sha256     CHAR(64)      NOT NULL DEFAULT '',
  method             VARCHAR(32)   NULL,        -- metadata | watermark | none
  session_id         CHAR(32)      NULL,        -- the accused session, if any
  false_accusation   DOUBLE        NULL,
  result             MEDIUMTEXT    NULL,        -- JSON: statistics, evidence, snapshot
  error              TEXT          NULL,
  created_by         CHAR(32)      NULL,
  attempts           INT           NOT NULL DEFAULT 0,
  max_attempts       INT           NOT NULL DEFAULT 2,
  run_after          DATETIME(6)   NOT NULL DEFAULT UTC_TIMESTAMP(6),
  lease_owner        VARCHAR(128)  NULL,
  lease_expires_at   DATETIME(6)   NULL,
  created_at         DATETIME(6)   NOT NULL DEFAULT UTC_TIMESTAMP(6),
  updated_at         DATETIME(6)   NOT NULL DEFAULT UTC_TIMESTAMP(6),
  started_at         DATETIME(6)   NULL,
  finished_at        DATETIME(6)   NULL,
  KEY ix_detections_claim (status, run_after),
  KEY ix_detections_lease (status, lease_expires_at),
  KEY ix_detections_created (created_at),
  KEY ix_detections_session (session_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
