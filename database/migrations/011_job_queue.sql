-- One generic job queue (svcommon.jobqueue) for every kind of background work. The
-- processing queue `jobs` becomes it: any `kind` ('video.process', 'detection.run', …) with
-- a JSON payload and an optional `subject` (the video or detection it is about, for lookups;
-- no foreign key, since subjects live in several tables: their deletes call
-- jobqueue.forget). Terminal states: done, or dead (dead-letter: permanent error or
-- attempts used up; an administrator may retry it). Detections keep their table for the
-- record and its user-facing state; their work runs as 'detection.run' jobs.
ALTER TABLE jobs DROP FOREIGN KEY fk_jobs_video;

ALTER TABLE jobs
  CHANGE video_id subject VARCHAR(64) NULL,
  CHANGE lease_expires_at lease_expires DATETIME(6) NULL,
  CHANGE error last_error TEXT NULL,
  MODIFY kind VARCHAR(64) NOT NULL,
  MODIFY status ENUM('queued','running','done','failed','cancelled','dead') NOT NULL DEFAULT 'queued',
  DROP INDEX ix_jobs_video,
  DROP INDEX ix_jobs_claim,
  ADD INDEX ix_jobs_subject (subject, created_at),
  ADD INDEX ix_jobs_claim (status, run_after, priority),
  ADD INDEX ix_jobs_listing (status, updated_at);

UPDATE jobs SET status = 'dead' WHERE status IN ('failed', 'cancelled');
UPDATE jobs SET kind = 'video.process' WHERE kind = 'process';
UPDATE jobs SET payload = JSON_OBJECT('video_id', subject) WHERE payload IS NULL OR payload = '';

ALTER TABLE jobs
  MODIFY status ENUM('queued','running','done','dead') NOT NULL DEFAULT 'queued',
  MODIFY payload JSON NOT NULL;

-- Unfinished detections move over as queue jobs (finished ones need no job).
INSERT INTO jobs (id, kind, subject, payload, priority, status, attempts, max_attempts, run_after, lease_owner,
                  lease_expires, progress, step, last_error, created_at, updated_at)
  SELECT REPLACE(UUID(), '-', ''), 'detection.run', id, JSON_OBJECT('detection_id', id), -10, status, attempts,
         max_attempts, run_after, lease_owner, lease_expires_at, progress, step, error, created_at, updated_at
  FROM detections WHERE status IN ('queued', 'running');

ALTER TABLE detections
  DROP INDEX ix_detections_claim,
  DROP INDEX ix_detections_lease,
  DROP COLUMN attempts,
  DROP COLUMN max_attempts,
  DROP COLUMN run_after,
  DROP COLUMN lease_owner,
  DROP COLUMN lease_expires_at;
