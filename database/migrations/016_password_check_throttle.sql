-- Password strength checks (POST /api/auth/password-check, no login needed, real CPU per call)
-- are counted per client address in the same fixed-window table as sign-ups.
ALTER TABLE login_throttle
  MODIFY scope ENUM('account','ip','account_ip','signup','password_check') NOT NULL;
