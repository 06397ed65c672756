-- sv_session_key_release (migrations 026 and 028) reads its answer from the session's tables
-- directly instead of from the view playback_session_delivery joined to playback_sessions again
-- (for started_at). MariaDB parses a view's definition each time a statement opens it; measured
-- on the test stack (SHOW PROFILES, same run): the view-and-self-join SELECT took 309-325 us of
-- server time, this one 210-215 us, the largest of the procedure's four statements
-- (bench/results/delivery-p5.md, P5).
-- The access rule (lost_reason) is the view's, restated below because a procedure cannot
-- share an expression with a view: tests/test_session_rows.py checks, case by case (owner,
-- admin, private, password with and without a grant, disabled account, revoked device), that
-- this answer's lost_reason equals the view's. A change of the rule must change both.
-- Same answer (028's JSON object, read by streaming-svc's repository.RELEASE_ROW), same
-- budget, same commit.
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
  UPDATE playback_sessions
     SET video_key_seconds = video_key_seconds + IF(p_track = 'video', p_seconds, 0),
         audio_key_seconds = audio_key_seconds + IF(p_track = 'audio', p_seconds, 0)
   WHERE id = p_session AND user_id = p_user AND jkt = p_jkt AND purpose = 'playback'
     AND ended_at IS NULL AND expires_at > UTC_TIMESTAMP(6)
     AND IF(p_track = 'video', video_key_seconds, audio_key_seconds) + p_seconds
         <= p_burst + p_factor * TIMESTAMPDIFF(MICROSECOND, started_at, UTC_TIMESTAMP(6)) / 1000000;
  SET charged = ROW_COUNT();
  SELECT JSON_OBJECT(
           'charged', charged + 0, 'id', s.id, 'video_id', s.video_id, 'user_id', s.user_id, 'jkt', s.jkt,
           'purpose', s.purpose, 'cek_enc', HEX(s.cek_enc), 'prev_cek_enc', HEX(s.prev_cek_enc),
           'key_epoch', s.key_epoch, 'epoch_started_at', s.epoch_started_at, 'tag_issued_at', s.tag_issued_at,
           'expires_at', s.expires_at, 'ended_at', s.ended_at, 'end_reason', s.end_reason,
           'video_key_seconds', s.video_key_seconds, 'audio_key_seconds', s.audio_key_seconds,
           'video_status', v.status, 'video_owner', v.owner_id,
           'lost_reason', CASE WHEN u.disabled THEN 'user_disabled'
                               WHEN dv.revoked_at IS NOT NULL THEN 'device_revoked'
                               WHEN u.role = 'admin' OR v.owner_id = s.user_id THEN NULL
                               WHEN v.visibility = 'private' THEN 'access_revoked'
                               WHEN v.visibility = 'password' AND g.video_id IS NULL THEN 'access_revoked'
                          END,
           'elapsed', TIMESTAMPDIFF(MICROSECOND, s.started_at, UTC_TIMESTAMP(6)) / 1000000) AS `release`
    FROM playback_sessions s
    JOIN videos v ON v.id = s.video_id
    JOIN users u ON u.id = s.user_id
    LEFT JOIN video_access_grants g ON g.user_id = s.user_id AND g.video_id = s.video_id
    LEFT JOIN devices dv ON dv.id = s.device_id
   WHERE s.id = p_session;
  COMMIT;
END //
DELIMITER ;
