-- Access grants and the usage outbox.
-- A grant is one voice session of one agent for one token, valid for 5 minutes.
-- The outbox holds usage events written in the same transaction as the use they record;
-- vap-usage reads it by sequence (and is told live over pub/sub), so no event is lost.
CREATE TABLE auth.grants (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    idempotency_key text NOT NULL UNIQUE,
    otp_id bigint REFERENCES auth.otps (id),
    admin_username text,
    agent_type text NOT NULL,
    token_jti text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL DEFAULT now() + interval '5 minutes',
    consumed_at timestamptz,
    CHECK ((otp_id IS NULL) <> (admin_username IS NULL))
);
CREATE INDEX grants_unconsumed ON auth.grants (token_jti, agent_type) WHERE consumed_at IS NULL;

CREATE TABLE auth.outbox (
    seq bigserial PRIMARY KEY,
    type text NOT NULL,
    otp_id bigint,
    agent_type text NOT NULL,
    grant_id uuid,
    occurred_at timestamptz NOT NULL DEFAULT now()
);
