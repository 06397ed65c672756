-- One-time password reset links an administrator issues (auth-svc): only the SHA-256 of the
-- token is stored; a link is used once, expires quickly, and a newer link voids older ones.
CREATE TABLE password_resets (
  id          CHAR(32)    NOT NULL PRIMARY KEY,
  token_hash  BINARY(32)  NOT NULL,
  user_id     CHAR(32)    NOT NULL,
  created_by  CHAR(32)    NULL,
  created_at  DATETIME(6) NOT NULL DEFAULT UTC_TIMESTAMP(6),
  expires_at  DATETIME(6) NOT NULL,
  used_at     DATETIME(6) NULL,
  UNIQUE KEY uq_reset_hash (token_hash),
  KEY ix_reset_user (user_id),
  CONSTRAINT fk_reset_user FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
