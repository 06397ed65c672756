-- login_throttle is pruned opportunistically (auth_svc.throttle: rows whose window has
-- passed and that lock nothing); this index lets that DELETE touch only those rows instead
-- of scanning (and locking) every row of the scope.
ALTER TABLE login_throttle
  ADD KEY ix_throttle_window (scope, window_start);
