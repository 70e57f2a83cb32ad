-- A credential may carry its own request rate, burst and connection cap
-- (`token create --rate --burst --max-connections`); NULL means the relay's
-- protective default.
ALTER TABLE credentials ADD COLUMN rate_per_sec REAL;
ALTER TABLE credentials ADD COLUMN burst REAL;
ALTER TABLE credentials ADD COLUMN max_connections INTEGER;
