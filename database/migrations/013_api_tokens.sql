-- API tokens for scripts and CI (auth-svc api_tokens.py; verified by every service through
-- svcommon/api_tokens.py). The token itself (svt_ + 43 base64url characters, 256 random bits)
-- is shown once and never stored: only its SHA-256, looked up through uq_api_token_hash on
-- every request. A row is never deleted by the user (revoked_at), so the security console
-- keeps naming the token its events are about.
CREATE TABLE api_tokens (
  id            CHAR(32)     NOT NULL PRIMARY KEY,
  user_id       CHAR(32)     NOT NULL,
  token_hash    BINARY(32)   NOT NULL,
  name          VARCHAR(64)  NOT NULL,
  scopes        VARCHAR(64)  NOT NULL,          -- space-separated: read upload forensics
  created_at    DATETIME(6)  NOT NULL DEFAULT UTC_TIMESTAMP(6),
  expires_at    DATETIME(6)  NOT NULL,
  revoked_at    DATETIME(6)  NULL,
  last_used_at  DATETIME(6)  NULL,
  last_used_ip  VARCHAR(64)  NULL,
  UNIQUE KEY uq_api_token_hash (token_hash),
  KEY ix_api_tokens_user (user_id, revoked_at),
  CONSTRAINT fk_api_token_user FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- The addresses each token has been used from: the first use from one not seen before is a
-- security event (api_token_new_address). Written only when the address differs from
-- api_tokens.last_used_ip, so a script on one machine costs no write per request.
CREATE TABLE api_token_addresses (
  token_id    CHAR(32)    NOT NULL,
  ip          VARCHAR(64) NOT NULL,
  first_seen  DATETIME(6) NOT NULL DEFAULT UTC_TIMESTAMP(6),
  PRIMARY KEY (token_id, ip),
  CONSTRAINT fk_api_token_address FOREIGN KEY (token_id) REFERENCES api_tokens(id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
