-- Webhooks (issue 17 item 4): endpoints an owner (or an admin, for every video) registers,
-- the events they are sent, and the last attempts of each endpoint's deliveries. The
-- deliveries themselves are 'webhook.deliver' jobs on the one queue (svcommon.jobqueue,
-- subject = the endpoint: deleting an endpoint forgets its jobs), enqueued in the
-- transaction that decides the event (svcommon.webhooks.emit).
CREATE TABLE webhook_endpoints (
  id              CHAR(32)      NOT NULL PRIMARY KEY,
  owner_id        CHAR(32)      NOT NULL,
  url             VARCHAR(2048) NOT NULL,
  description     VARCHAR(200)  NOT NULL DEFAULT '',
  events          SET('video.ready','video.failed','video.deleted','leak.traced') NOT NULL,
  all_videos      TINYINT(1)    NOT NULL DEFAULT 0,     -- admins only: every video's events
  secret_enc      VARBINARY(128) NOT NULL,              -- sealed under MEDIA_MASTER_KEY (AAD: the id)
  enabled         TINYINT(1)    NOT NULL DEFAULT 1,
  dead_streak     INT           NOT NULL DEFAULT 0,     -- deliveries given up in a row
  disabled_reason VARCHAR(300)  NOT NULL DEFAULT '',
  created_at      DATETIME(6)   NOT NULL DEFAULT UTC_TIMESTAMP(6),
  updated_at      DATETIME(6)   NOT NULL DEFAULT UTC_TIMESTAMP(6),
  KEY ix_webhook_endpoints_owner (owner_id, created_at),
  KEY ix_webhook_endpoints_all (all_videos, enabled),
  CONSTRAINT fk_webhook_endpoints_owner FOREIGN KEY (owner_id) REFERENCES users(id) ON DELETE CASCADE
) ENGINE=InnoDB;

-- One row per event: the body every endpoint gets (and a redelivery sends again).
-- dedupe_key: an event decided twice (a video failed by two dying parts) is sent once.
CREATE TABLE webhook_events (
  id              CHAR(32)      NOT NULL PRIMARY KEY,
  type            VARCHAR(32)   NOT NULL,
  dedupe_key      VARCHAR(100)  NULL,
  data            JSON          NOT NULL,
  created_at      DATETIME(6)   NOT NULL DEFAULT UTC_TIMESTAMP(6),
  UNIQUE KEY uq_webhook_events_dedupe (dedupe_key),
  KEY ix_webhook_events_created (created_at)
) ENGINE=InnoDB;

-- The last attempts per endpoint (older ones pruned as new ones are written).
CREATE TABLE webhook_attempts (
  id              BIGINT        NOT NULL AUTO_INCREMENT PRIMARY KEY,
  endpoint_id     CHAR(32)      NOT NULL,
  event_id        CHAR(32)      NOT NULL,
  event_type      VARCHAR(32)   NOT NULL,
  attempt         INT           NOT NULL,
  outcome         ENUM('delivered','failed','refused') NOT NULL,
  status_code     INT           NULL,
  latency_ms      INT           NULL,
  error           VARCHAR(300)  NOT NULL DEFAULT '',
  created_at      DATETIME(6)   NOT NULL DEFAULT UTC_TIMESTAMP(6),
  KEY ix_webhook_attempts_endpoint (endpoint_id, id),
  CONSTRAINT fk_webhook_attempts_endpoint FOREIGN KEY (endpoint_id) REFERENCES webhook_endpoints(id)
    ON DELETE CASCADE
) ENGINE=InnoDB;
