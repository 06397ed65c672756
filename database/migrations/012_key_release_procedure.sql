-- Delivery v2: one round trip per key request (streaming-svc keys.py, docs/api.md "Keys").
-- sv_key_release records the request's DPoP proof id (a replayed proof fails right here
-- with a duplicate key, before anything is charged) and charges the track's key budget,
-- in one transaction that it commits. The budget rule (docs/api.md "Key release pacing"):
-- the media seconds covered by a session's released keys of a track stay within
-- burst + factor x seconds since the session started. One conditional UPDATE, so
-- concurrent requests in any process or replica can never together exceed it.
-- Result: one row, charged = 1 (release the keys) or 0 (refused; the proof is used up).
DELIMITER //
CREATE PROCEDURE sv_key_release(IN p_jti_hash BINARY(32), IN p_jti_expires DATETIME, IN p_session CHAR(32),
                                IN p_track VARCHAR(8), IN p_seconds DOUBLE, IN p_burst DOUBLE,
                                IN p_factor DOUBLE)
  MODIFIES SQL DATA
  SQL SECURITY INVOKER
BEGIN
  DECLARE charged INT DEFAULT 0;
  INSERT INTO dpop_replay (jti_hash, expires_at) VALUES (p_jti_hash, p_jti_expires);
  IF p_track = 'video' THEN
    UPDATE playback_sessions SET video_key_seconds = video_key_seconds + p_seconds
     WHERE id = p_session AND video_key_seconds + p_seconds
           <= p_burst + p_factor * TIMESTAMPDIFF(MICROSECOND, started_at, UTC_TIMESTAMP(6)) / 1000000;
  ELSEIF p_track = 'audio' THEN
    UPDATE playback_sessions SET audio_key_seconds = audio_key_seconds + p_seconds
     WHERE id = p_session AND audio_key_seconds + p_seconds
           <= p_burst + p_factor * TIMESTAMPDIFF(MICROSECOND, started_at, UTC_TIMESTAMP(6)) / 1000000;
  ELSE
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'sv_key_release: unknown track';
  END IF;
  SET charged = ROW_COUNT();
  COMMIT;
  SELECT charged;
END //
DELIMITER ;
