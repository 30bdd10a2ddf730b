-- Traffic totals per agent kept up to date as accesses and sessions are written, so the
-- traffic page reads one row per agent instead of aggregating every access ever
-- recorded: it took 20 ms at 40,000 accesses and grew with each one (the 30-minute soak
-- saw REST p99 climb from 12 to 80 ms with it).
--
-- agent_users holds each (agent, code) pair once, so "unique users" is a counter too.
-- Triggers keep both tables right, in the same transaction as the change, for whatever
-- is written to either source table (inserts, session updates, deletes, truncation);
-- the rows already there are counted at the end.
CREATE TABLE usage.agent_users (
    agent_type text NOT NULL,
    otp_id bigint NOT NULL,
    PRIMARY KEY (agent_type, otp_id)
);

CREATE TABLE usage.agent_totals (
    agent_type text PRIMARY KEY,
    accesses bigint NOT NULL DEFAULT 0,
    users bigint NOT NULL DEFAULT 0,
    last_accessed_at timestamptz,
    sessions bigint NOT NULL DEFAULT 0,
    session_seconds double precision NOT NULL DEFAULT 0
);

CREATE FUNCTION usage.count_access() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    added int := 0;
BEGIN
    IF NEW.otp_id IS NOT NULL THEN
        INSERT INTO usage.agent_users VALUES (NEW.agent_type, NEW.otp_id) ON CONFLICT DO NOTHING;
        GET DIAGNOSTICS added = ROW_COUNT;
    END IF;
    INSERT INTO usage.agent_totals AS t (agent_type, accesses, users, last_accessed_at)
        VALUES (NEW.agent_type, 1, added, NEW.accessed_at)
        ON CONFLICT (agent_type) DO UPDATE SET
            accesses = t.accesses + 1,
            users = t.users + excluded.users,
            last_accessed_at = greatest(t.last_accessed_at, excluded.last_accessed_at);
    RETURN NULL;
END $$;

-- Deleting accesses (an operator's retention) is rare: the agents it touched are
-- counted again from what is left, once per statement.
CREATE FUNCTION usage.recount_accesses() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        DELETE FROM usage.agent_users;
        UPDATE usage.agent_totals SET accesses = 0, users = 0, last_accessed_at = NULL;
        RETURN NULL;
    END IF;
    DELETE FROM usage.agent_users WHERE agent_type IN (SELECT agent_type FROM gone);
    INSERT INTO usage.agent_users
        SELECT DISTINCT agent_type, otp_id FROM usage.accesses
        WHERE agent_type IN (SELECT agent_type FROM gone) AND otp_id IS NOT NULL;
    UPDATE usage.agent_totals t SET
        accesses = (SELECT count(*) FROM usage.accesses a WHERE a.agent_type = t.agent_type),
        users = (SELECT count(*) FROM usage.agent_users u WHERE u.agent_type = t.agent_type),
        last_accessed_at = (SELECT max(accessed_at) FROM usage.accesses a
                            WHERE a.agent_type = t.agent_type)
        WHERE t.agent_type IN (SELECT agent_type FROM gone);
    RETURN NULL;
END $$;

-- accesses' agent_type and otp_id are never updated (only their session columns are).
CREATE TRIGGER accesses_counted AFTER INSERT ON usage.accesses
    FOR EACH ROW EXECUTE FUNCTION usage.count_access();
CREATE TRIGGER accesses_recounted AFTER DELETE ON usage.accesses
    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION usage.recount_accesses();
CREATE TRIGGER accesses_emptied AFTER TRUNCATE ON usage.accesses
    FOR EACH STATEMENT EXECUTE FUNCTION usage.recount_accesses();

CREATE FUNCTION usage.count_session() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE usage.agent_totals SET
            sessions = sessions - 1,
            session_seconds = session_seconds - coalesce(OLD.duration_seconds, 0)
            WHERE agent_type = OLD.agent_type;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO usage.agent_totals AS t (agent_type, sessions, session_seconds)
            VALUES (NEW.agent_type, 1, coalesce(NEW.duration_seconds, 0))
            ON CONFLICT (agent_type) DO UPDATE SET
                sessions = t.sessions + 1,
                session_seconds = t.session_seconds + excluded.session_seconds;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER sessions_counted AFTER INSERT OR DELETE OR UPDATE OF agent_type, duration_seconds
    ON usage.sessions FOR EACH ROW EXECUTE FUNCTION usage.count_session();

CREATE FUNCTION usage.forget_sessions() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE usage.agent_totals SET sessions = 0, session_seconds = 0;
    RETURN NULL;
END $$;

CREATE TRIGGER sessions_emptied AFTER TRUNCATE ON usage.sessions
    FOR EACH STATEMENT EXECUTE FUNCTION usage.forget_sessions();

INSERT INTO usage.agent_users
    SELECT DISTINCT agent_type, otp_id FROM usage.accesses WHERE otp_id IS NOT NULL;
INSERT INTO usage.agent_totals (agent_type, accesses, users, last_accessed_at)
    SELECT agent_type, count(*), count(DISTINCT otp_id), max(accessed_at)
    FROM usage.accesses GROUP BY agent_type;
INSERT INTO usage.agent_totals AS t (agent_type, sessions, session_seconds)
    SELECT agent_type, count(*), coalesce(sum(duration_seconds), 0)
    FROM usage.sessions GROUP BY agent_type
    ON CONFLICT (agent_type) DO UPDATE SET
        sessions = excluded.sessions, session_seconds = excluded.session_seconds;
