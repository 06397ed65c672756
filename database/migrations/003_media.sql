-- Processed media (watermark-svc workers): one row per ready video describing its CMAF
-- A/B ladder, so per-session manifests are generated from the database, never from S3.
CREATE TABLE video_media (
  video_id       CHAR(32)     NOT NULL PRIMARY KEY,
  segment_count  INT          NOT NULL,
  duration       DOUBLE       NOT NULL,
  -- The pipeline's metadata (JSON): renditions (name, size, bandwidth, codecs, init and
  -- per-segment sizes for variants a/b), audio, segment durations, fps, watermark params.
  metadata       MEDIUMTEXT   NOT NULL,
  created_at     DATETIME(6)  NOT NULL DEFAULT UTC_TIMESTAMP(6),
  CONSTRAINT fk_media_video FOREIGN KEY (video_id) REFERENCES videos(id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
