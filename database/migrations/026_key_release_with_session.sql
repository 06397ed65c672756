-- A key request in ONE round trip (streaming-svc keys.py; bench/results/delivery-p5.md): the
-- session lookup, which took a second round trip whenever the per-process session cache had
-- expired (as for nearly every player request), now comes back from the release itself.
--
-- playback_session_delivery: a session as manifest, init and key requests see it, and the one
-- rule deciding whether its user may still watch: lost_reason, the end reason if not (NULL if
-- they may). The video's status is the caller's concern (410, not 403). A grant row that
-- exists but expired still covers a session it opened (a film outlives the 1-hour grant);
-- changing the password or visibility deletes the rows (upload-svc), which ends such sessions.
-- Read by streaming-svc's lookups and heartbeats and by the procedure below; few columns,
-- because each costs the pure-Python client a column definition to parse per query.
CREATE OR REPLACE ALGORITHM = MERGE SQL SECURITY INVOKER VIEW playback_session_delivery AS
SELECT s.id, s.video_id, s.user_id, s.jkt, s.purpose, s.cek_enc, s.prev_cek_enc, s.key_epoch,
       s.epoch_started_at, s.tag_issued_at, s.expires_at, s.ended_at, s.end_reason,
       s.video_key_seconds, s.audio_key_seconds, v.status AS video_status, v.owner_id AS video_owner,
       CASE WHEN u.disabled THEN 'user_disabled'
            WHEN dv.revoked_at IS NOT NULL THEN 'device_revoked'
            WHEN u.role = 'admin' OR v.owner_id = s.user_id THEN NULL
            WHEN v.visibility = 'private' THEN 'access_revoked'
            WHEN v.visibility = 'password' AND g.video_id IS NULL THEN 'access_revoked'
       END AS lost_reason
  FROM playback_sessions s
  JOIN videos v ON v.id = s.video_id
  JOIN users u ON u.id = s.user_id
  LEFT JOIN video_access_grants g ON g.user_id = s.user_id AND g.video_id = s.video_id
  LEFT JOIN devices dv ON dv.id = s.device_id;

-- sv_session_key_release replaces migration 012's sv_key_release. It records the request's
-- DPoP proof id (a replayed proof fails right here with a duplicate key, before anything is
-- charged), then charges the track's key budget only if the session is this caller's
-- (user and device key), open for playback, not ended and not expired; the budget rule is
-- 012's (docs/api.md "Key release pacing"): the media seconds covered by released keys stay
-- within burst + factor x seconds since the session started, one conditional UPDATE, so
-- concurrent requests in any process or replica can never together exceed it. Committed.
-- Result: no row for an unknown session; else one row: charged (1: release the keys; 0:
-- refused, and the caller finds out why from the rest of the row), the session as
-- playback_session_delivery has it, and elapsed (seconds since it started, for Retry-After).
DROP PROCEDURE IF EXISTS sv_key_release;
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
  IF p_track = 'video' THEN
    UPDATE playback_sessions SET video_key_seconds = video_key_seconds + p_seconds
     WHERE id = p_session AND user_id = p_user AND jkt = p_jkt AND purpose = 'playback'
       AND ended_at IS NULL AND expires_at > UTC_TIMESTAMP(6)
       AND video_key_seconds + p_seconds
           <= p_burst + p_factor * TIMESTAMPDIFF(MICROSECOND, started_at, UTC_TIMESTAMP(6)) / 1000000;
  ELSEIF p_track = 'audio' THEN
    UPDATE playback_sessions SET audio_key_seconds = audio_key_seconds + p_seconds
     WHERE id = p_session AND user_id = p_user AND jkt = p_jkt AND purpose = 'playback'
       AND ended_at IS NULL AND expires_at > UTC_TIMESTAMP(6)
       AND audio_key_seconds + p_seconds
           <= p_burst + p_factor * TIMESTAMPDIFF(MICROSECOND, started_at, UTC_TIMESTAMP(6)) / 1000000;
  ELSE
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'sv_session_key_release: unknown track';
  END IF;
  SET charged = ROW_COUNT();
  SELECT charged, d.*, TIMESTAMPDIFF(MICROSECOND, s.started_at, UTC_TIMESTAMP(6)) / 1000000 AS elapsed
    FROM playback_session_delivery d JOIN playback_sessions s ON s.id = d.id WHERE d.id = p_session;
  COMMIT;
END //
DELIMITER ;
