-- Seek-preview storyboards (issue #16 item 3): a video's sprites are stored under
-- media/{video}/storyboard/ by its 'video.storyboard' job (watermark-svc storyboards.py);
-- this row says they are complete and how they are laid out (svcommon.storyboards.Storyboard
-- as JSON: interval, tiles, tile size, columns x rows per sprite, sprite sizes). No row: the
-- video plays without seek previews (processed before storyboards, or its job failed).
CREATE TABLE video_storyboards (
  video_id    CHAR(32)     NOT NULL PRIMARY KEY,
  metadata    TEXT         NOT NULL,
  created_at  DATETIME(6)  NOT NULL DEFAULT UTC_TIMESTAMP(6),
  CONSTRAINT fk_storyboard_video FOREIGN KEY (video_id) REFERENCES videos(id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
