-- An image's runtime config from its OCI config (or bundle manifest):
-- JSON {"env":[...],"working_dir":"...","entrypoint":[...],"cmd":[...]};
-- '' = nothing recorded (images from before, golden, register).
ALTER TABLE images ADD COLUMN runtime TEXT NOT NULL DEFAULT '';
