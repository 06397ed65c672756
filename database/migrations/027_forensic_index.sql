-- The forensic catalogue index (issue #19 item 1; watermark-svc forensics/index.py and
-- indexdb.py): a trace looks up its suspect's signature keys here to find the few videos
-- worth an exact fingerprint correlation, instead of correlating every video. One row per
-- (key, video, window): window_no * 0.5 s is where in the video the signed window starts.
-- forensic_indexed_videos says a video's rows are complete and which signature version made
-- them; a ready video without a row (processed before the index) is indexed by the next trace.
CREATE TABLE forensic_signatures (
  hash_key    INT UNSIGNED  NOT NULL,
  video_id    CHAR(32)      NOT NULL,
  window_no   INT UNSIGNED  NOT NULL,
  PRIMARY KEY (hash_key, video_id, window_no),
  KEY idx_forensic_signatures_video (video_id),
  CONSTRAINT fk_forensic_signatures_video FOREIGN KEY (video_id) REFERENCES videos(id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE forensic_indexed_videos (
  video_id    CHAR(32)      NOT NULL PRIMARY KEY,
  version     VARCHAR(16)   NOT NULL,
  windows     INT UNSIGNED  NOT NULL,
  indexed_at  DATETIME(6)   NOT NULL DEFAULT UTC_TIMESTAMP(6),
  CONSTRAINT fk_forensic_indexed_video FOREIGN KEY (video_id) REFERENCES videos(id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
