-- vap-usage's schema: usage records (one per granted access, from auth's outbox),
-- voice sessions (filled by the voice workers' events, see the voice issue), and the
-- outbox cursor: every outbox seq at or below last_seq has been applied.
CREATE TABLE usage.accesses (
    id bigserial PRIMARY KEY,
    outbox_seq bigint NOT NULL UNIQUE,
    otp_id bigint,
    agent_type text NOT NULL,
    grant_id uuid,
    accessed_at timestamptz NOT NULL,
    session_id text,
    duration_seconds double precision
);
CREATE INDEX accesses_newest ON usage.accesses (accessed_at DESC, id DESC);
CREATE INDEX accesses_by_agent ON usage.accesses (agent_type, accessed_at DESC);

CREATE TABLE usage.sessions (
    session_id text PRIMARY KEY,
    grant_id uuid,
    otp_id bigint,
    agent_type text NOT NULL,
    started_at timestamptz NOT NULL,
    ended_at timestamptz,
    duration_seconds double precision,
    audio_in_seconds double precision,
    audio_out_seconds double precision,
    llm_tokens_in bigint,
    llm_tokens_out bigint,
    turns integer,
    end_reason text
);
CREATE INDEX sessions_by_agent ON usage.sessions (agent_type, started_at);

CREATE TABLE usage.cursor (
    id integer PRIMARY KEY CHECK (id = 1),
    last_seq bigint NOT NULL
);
INSERT INTO usage.cursor VALUES (1, 0);
