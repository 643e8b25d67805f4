-- Issue 7: pulled, registered and promoted images; pulled kernels.
-- init: '' = not recorded (the agent looks for /sbin/init at boot),
-- 'none' = the image has no init (the agent stays PID 1), else its path.
ALTER TABLE images ADD COLUMN kernel   TEXT    NOT NULL DEFAULT '';
ALTER TABLE images ADD COLUMN init     TEXT    NOT NULL DEFAULT '';
ALTER TABLE images ADD COLUMN has_sshd INTEGER NOT NULL DEFAULT 1;
ALTER TABLE images ADD COLUMN digest   TEXT    NOT NULL DEFAULT '';
ALTER TABLE images ADD COLUMN ref      TEXT    NOT NULL DEFAULT '';
ALTER TABLE kernels ADD COLUMN digest  TEXT    NOT NULL DEFAULT '';
