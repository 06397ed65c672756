-- Delivery v2 (encrypt once, key per session). Media segments are stored only as
-- ciphertext under keys derived from a per-video content secret (svcommon.media_crypto);
-- the secret is kept here sealed under MEDIA_MASTER_KEY. delivery_version 1 = plaintext
-- segments from before v2 (converted by `python -m watermark_svc.convert`), 2 = encrypted.
ALTER TABLE video_media
  ADD COLUMN content_secret_enc VARBINARY(80) NULL AFTER metadata,
  ADD COLUMN delivery_version   TINYINT       NOT NULL DEFAULT 1 AFTER content_secret_enc;

-- Key release pacing: how many seconds of media each track's released keys cover, so a
-- session cannot obtain keys much faster than real time (streaming-svc keys.py).
ALTER TABLE playback_sessions
  ADD COLUMN video_key_seconds DOUBLE NOT NULL DEFAULT 0,
  ADD COLUMN audio_key_seconds DOUBLE NOT NULL DEFAULT 0;
