-- Accounts, tokens, devices and the security record (auth-svc and the shared package).
CREATE TABLE users (
  id            CHAR(32)     NOT NULL PRIMARY KEY,
  username      VARCHAR(64)  NOT NULL,
  email         VARCHAR(254) NOT NULL,
  password_hash VARCHAR(255) NOT NULL,
  role          ENUM('admin','uploader','viewer') NOT NULL DEFAULT 'viewer',
  disabled      TINYINT(1)   NOT NULL DEFAULT 0,
  created_at    DATETIME(6)  NOT NULL DEFAULT UTC_TIMESTAMP(6),
  updated_at    DATETIME(6)  NOT NULL DEFAULT UTC_TIMESTAMP(6),
  UNIQUE KEY uq_users_username (username),
  UNIQUE KEY uq_users_email (email)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Opaque refresh tokens, stored hashed; a family is one login's chain of rotations.
CREATE TABLE refresh_tokens (
  id          CHAR(32)    NOT NULL PRIMARY KEY,
  token_hash  BINARY(32)  NOT NULL,
  user_id     CHAR(32)    NOT NULL,
  family_id   CHAR(32)    NOT NULL,
  created_at  DATETIME(6) NOT NULL DEFAULT UTC_TIMESTAMP(6),
  expires_at  DATETIME(6) NOT NULL,
  rotated_at  DATETIME(6) NULL,
  revoked_at  DATETIME(6) NULL,
  ip          VARCHAR(64) NULL,
  user_agent  VARCHAR(512) NULL,
  UNIQUE KEY uq_refresh_hash (token_hash),
  KEY ix_refresh_family (family_id),
  KEY ix_refresh_user (user_id),
  CONSTRAINT fk_refresh_user FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Token signing keys: private half encrypted under AUTH_KEY_ENCRYPTION_SECRET so any
-- auth-svc replica can sign; retired keys stay published until their tokens expire.
CREATE TABLE signing_keys (
  kid             VARCHAR(64)  NOT NULL PRIMARY KEY,
  private_key_enc BLOB         NOT NULL,
  public_jwk      TEXT         NOT NULL,
  created_at      DATETIME(6)  NOT NULL DEFAULT UTC_TIMESTAMP(6),
  retired_at      DATETIME(6)  NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Devices: a WebCrypto ECDSA key (identified by its RFC 7638 thumbprint) per browser,
-- plus the seed's fingerprint fields kept as information.
CREATE TABLE devices (
  id          CHAR(32)     NOT NULL PRIMARY KEY,
  user_id     CHAR(32)     NOT NULL,
  jkt         CHAR(43)     NOT NULL,
  public_jwk  TEXT         NOT NULL,
  user_agent  VARCHAR(512) NULL,
  screen      VARCHAR(32)  NULL,
  timezone    VARCHAR(64)  NULL,
  language    VARCHAR(35)  NULL,
  first_seen  DATETIME(6)  NOT NULL DEFAULT UTC_TIMESTAMP(6),
  last_seen   DATETIME(6)  NOT NULL DEFAULT UTC_TIMESTAMP(6),
  last_ip     VARCHAR(64)  NULL,
  revoked_at  DATETIME(6)  NULL,
  UNIQUE KEY uq_device_user_key (user_id, jkt),
  CONSTRAINT fk_device_user FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Used DPoP proof ids (hashed), kept a little longer than a proof may live.
CREATE TABLE dpop_replay (
  jti_hash   BINARY(32)  NOT NULL PRIMARY KEY,
  expires_at DATETIME    NOT NULL,
  KEY ix_dpop_expires (expires_at)
) ENGINE=InnoDB;

CREATE TABLE security_events (
  id         CHAR(32)     NOT NULL PRIMARY KEY,
  created_at DATETIME(6)  NOT NULL DEFAULT UTC_TIMESTAMP(6),
  kind       VARCHAR(40)  NOT NULL,
  service    VARCHAR(40)  NOT NULL,
  user_id    CHAR(32)     NULL,
  ip         VARCHAR(64)  NULL,
  path       VARCHAR(255) NULL,
  detail     TEXT         NULL,
  KEY ix_events_created (created_at),
  KEY ix_events_kind (kind, created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Failed-login counters per account and per client address (sliding window + lockout).
CREATE TABLE login_throttle (
  scope        ENUM('account','ip') NOT NULL,
  subject      VARCHAR(255) NOT NULL,
  failures     INT          NOT NULL DEFAULT 0,
  window_start DATETIME(6)  NOT NULL,
  locked_until DATETIME(6)  NULL,
  PRIMARY KEY (scope, subject)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
