-- Chunked processing on the queue (watermark-svc handlers.py, repository/chunks.py). The
-- 'video.process' job plans a video into 'video.chunk' jobs (one rung × one run of whole
-- segments) and one 'video.audio' job; what they share lives here. A chunk's result (its
-- plaintext segment sizes and durations) is recorded with its job's end, so a completed
-- chunk is never redone; `encodes` counts how often its encoding started (a killed worker
-- shows as 2). Rows go with their video.
CREATE TABLE video_encodes (
  video_id           CHAR(32)     NOT NULL PRIMARY KEY,
  plan               JSON         NOT NULL,   -- probe facts, JobPlan, encode settings, chunks
  content_secret_enc VARBINARY(80) NOT NULL,  -- the secret the chunks seal their segments under
  audio              JSON         NULL,       -- the audio task's metadata entry once done
  created_at         DATETIME(6)  NOT NULL DEFAULT UTC_TIMESTAMP(6),
  CONSTRAINT fk_video_encodes_video FOREIGN KEY (video_id) REFERENCES videos (id) ON DELETE CASCADE
) ENGINE=InnoDB;

CREATE TABLE video_chunks (
  video_id     CHAR(32)     NOT NULL,
  rung         VARCHAR(16)  NOT NULL,
  chunk_index  INT          NOT NULL,
  encodes      INT          NOT NULL DEFAULT 0,
  encoded_by   VARCHAR(128) NULL,            -- the worker of the latest encode
  result       JSON         NULL,             -- NULL until the chunk is done
  done_at      DATETIME(6)  NULL,
  PRIMARY KEY (video_id, rung, chunk_index),
  CONSTRAINT fk_video_chunks_video FOREIGN KEY (video_id) REFERENCES video_encodes (video_id) ON DELETE CASCADE
) ENGINE=InnoDB;
