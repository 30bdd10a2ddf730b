-- vap-auth's schema: administrators, one-time codes.
-- OTP codes are never stored in plain text: code_hash is a keyed hash (HMAC-SHA256 with a
-- key derived from SECRET_KEY) used to find a code, code_enc the code encrypted with
-- another derived key so that the admin can still list it. Deleted codes keep their row
-- (usage history refers to them) but lose code_enc.
CREATE TABLE auth.admins (
    id bigserial PRIMARY KEY,
    username text NOT NULL UNIQUE,
    password_hash text NOT NULL,
    password_version integer NOT NULL DEFAULT 1,
    password_changed boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE auth.otps (
    id bigserial PRIMARY KEY,
    code_hash bytea NOT NULL,
    code_enc bytea,
    max_uses integer NOT NULL CHECK (max_uses BETWEEN 1 AND 100000),
    used_count integer NOT NULL DEFAULT 0 CHECK (used_count >= 0 AND used_count <= max_uses),
    is_active boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz
);

-- A code is unique among live codes (not deleted, active, uses left).
CREATE UNIQUE INDEX otps_live_code ON auth.otps (code_hash)
    WHERE deleted_at IS NULL AND is_active AND used_count < max_uses;
CREATE INDEX otps_code_hash ON auth.otps (code_hash);
CREATE INDEX otps_not_deleted ON auth.otps (id DESC) WHERE deleted_at IS NULL;
CREATE INDEX otps_revoked ON auth.otps (updated_at) WHERE deleted_at IS NOT NULL OR NOT is_active;
