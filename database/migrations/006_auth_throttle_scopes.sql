-- Login throttling per (account, client address) instead of a hard per-account lock, and a
-- per-address sign-up counter: new scopes in the same table ('account' stays: the global
-- per-account counter that only slows attempts down, never locks the account).
ALTER TABLE login_throttle
  MODIFY scope ENUM('account','ip','account_ip','signup') NOT NULL;
