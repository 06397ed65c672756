-- sv_session_key_release (migration 026) answers its session row as ONE JSON column instead
-- of 20 (streaming-svc repository.release_keys decodes it; bench/results/delivery-p5.md, P5).
-- The pure-Python MariaDB client reads every column definition packet with two socket reads
-- and parses it in Python on every call: measured on the test stack's MariaDB, a CALL of 026's
-- procedure took 0.79-0.85 ms from Python and this one 0.60-0.65 ms (same run, same session).
-- Same rule (the view playback_session_delivery), same budget, same commit (026's two
-- UPDATEs, one per track, are one here); the answer's shape changes: no row for an unknown
-- session, else one row whose column `release` is a JSON object with the view's columns (the
-- binary cek_enc and prev_cek_enc in hex, DATETIME(6) values as 'YYYY-MM-DD hh:mm:ss.ffffff'
-- in UTC), `charged` (1: release the keys; 0: refused) and `elapsed` (seconds since the
-- session started): streaming-svc's repository.RELEASE_ROW reads it.
DROP PROCEDURE IF EXISTS sv_session_key_release;
DELIMITER //
CREATE PROCEDURE sv_session_key_release(IN p_jti_hash BINARY(32), IN p_jti_expires DATETIME,
                                        IN p_session CHAR(32), IN p_user CHAR(32), IN p_jkt CHAR(43),
                                        IN p_track VARCHAR(8), IN p_seconds DOUBLE, IN p_burst DOUBLE,
                                        IN p_factor DOUBLE)
  MODIFIES SQL DATA
  SQL SECURITY INVOKER
BEGIN
  DECLARE charged INT DEFAULT 0;
  INSERT INTO dpop_replay (jti_hash, expires_at) VALUES (p_jti_hash, p_jti_expires);
  IF p_track NOT IN ('video', 'audio') THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'sv_session_key_release: unknown track';
  END IF;
  -- (026's two UPDATEs, one per track, as one: the WHERE reads the values before the SET)
  UPDATE playback_sessions
     SET video_key_seconds = video_key_seconds + IF(p_track = 'video', p_seconds, 0),
         audio_key_seconds = audio_key_seconds + IF(p_track = 'audio', p_seconds, 0)
   WHERE id = p_session AND user_id = p_user AND jkt = p_jkt AND purpose = 'playback'
     AND ended_at IS NULL AND expires_at > UTC_TIMESTAMP(6)
     AND IF(p_track = 'video', video_key_seconds, audio_key_seconds) + p_seconds
         <= p_burst + p_factor * TIMESTAMPDIFF(MICROSECOND, started_at, UTC_TIMESTAMP(6)) / 1000000;
  SET charged = ROW_COUNT();
  SELECT JSON_OBJECT(
           'charged', charged + 0, 'id', d.id, 'video_id', d.video_id, 'user_id', d.user_id, 'jkt', d.jkt,
           'purpose', d.purpose, 'cek_enc', HEX(d.cek_enc), 'prev_cek_enc', HEX(d.prev_cek_enc),
           'key_epoch', d.key_epoch, 'epoch_started_at', d.epoch_started_at, 'tag_issued_at', d.tag_issued_at,
           'expires_at', d.expires_at, 'ended_at', d.ended_at, 'end_reason', d.end_reason,
           'video_key_seconds', d.video_key_seconds, 'audio_key_seconds', d.audio_key_seconds,
           'video_status', d.video_status, 'video_owner', d.video_owner, 'lost_reason', d.lost_reason,
           'elapsed', TIMESTAMPDIFF(MICROSECOND, s.started_at, UTC_TIMESTAMP(6)) / 1000000) AS `release`
    FROM playback_session_delivery d JOIN playback_sessions s ON s.id = d.id WHERE d.id = p_session;
  COMMIT;
END //
DELIMITER ;
