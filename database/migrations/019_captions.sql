-- Caption tracks (upload-svc captions.py): one WebVTT file per language of a video, stored
-- at object_key (captions/{video_id}/{id}.vtt, normalised WebVTT whatever was uploaded) and
-- listed in the manifest of every playback session of the video (streaming-svc).
-- Rows go with their video (ON DELETE CASCADE); the objects go with the video's prefixes.
CREATE TABLE video_captions (
  id          CHAR(32)      NOT NULL PRIMARY KEY,
  video_id    CHAR(32)      NOT NULL,
  lang        VARCHAR(35)   NOT NULL,           -- BCP 47 tag as given, e.g. en, pt-BR
  label       VARCHAR(100)  NOT NULL,
  object_key  VARCHAR(512)  NOT NULL,
  source_format ENUM('vtt','srt') NOT NULL,
  cue_count   INT UNSIGNED  NOT NULL,
  size_bytes  INT UNSIGNED  NOT NULL,
  created_at  DATETIME(6)   NOT NULL DEFAULT UTC_TIMESTAMP(6),
  UNIQUE KEY uq_captions_video_lang (video_id, lang),
  CONSTRAINT fk_captions_video FOREIGN KEY (video_id) REFERENCES videos (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
