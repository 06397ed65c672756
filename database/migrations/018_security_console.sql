-- Security console (watermark-svc security_console.py): the admin who acted is recorded
-- apart from the user an event is about (admin_session_ended, admin_device_revoked,
-- admin_user_disabled: user_id = the target's account, actor_id = the admin), and the
-- console's filters (user, time range) and its newest-first pages read through indexes.
ALTER TABLE security_events
  ADD COLUMN actor_id CHAR(32) NULL AFTER user_id,
  ADD KEY ix_events_user (user_id, created_at),
  ADD KEY ix_events_actor (actor_id, created_at);

-- (playback_sessions.started_at has its index from 017: ix_sessions_started.)
ALTER TABLE playback_sessions
  ADD KEY ix_sessions_user_started (user_id, started_at),
  ADD KEY ix_sessions_device (device_id);
