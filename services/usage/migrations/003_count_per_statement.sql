-- Accesses are counted once per statement instead of once per row. vap-usage writes
-- a batch of accesses with one INSERT; the per-row trigger ran a PL/pgSQL function and
-- two statements for each row, all on the same agent_totals row, and made vap-usage's
-- database connection the largest user of CPU in the access benchmark. The statement
-- trigger reads the rows just inserted (the transition table) and updates each agent's
-- totals once. What it counts is unchanged: test_usage_totals compares the totals with
-- a full aggregate.
--
-- Also: accesses and sessions are matched by grant in both directions (an access
-- insert finds a session that started before its event arrived; a session report
-- updates its access), and neither lookup had an index: each was a scan of the whole
-- table, growing with every access.
CREATE FUNCTION usage.count_accesses() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    WITH fresh AS (
        INSERT INTO usage.agent_users
            SELECT DISTINCT agent_type, otp_id FROM added WHERE otp_id IS NOT NULL
            ON CONFLICT DO NOTHING
            RETURNING agent_type),
    per_agent AS (
        SELECT agent_type, count(*) AS n, max(accessed_at) AS last
        FROM added GROUP BY agent_type)
    INSERT INTO usage.agent_totals AS t (agent_type, accesses, users, last_accessed_at)
        SELECT p.agent_type, p.n, (SELECT count(*) FROM fresh f WHERE f.agent_type = p.agent_type),
               p.last
        FROM per_agent p
        ON CONFLICT (agent_type) DO UPDATE SET
            accesses = t.accesses + excluded.accesses,
            users = t.users + excluded.users,
            last_accessed_at = greatest(t.last_accessed_at, excluded.last_accessed_at);
    RETURN NULL;
END $$;

DROP TRIGGER accesses_counted ON usage.accesses;
DROP FUNCTION usage.count_access();
CREATE TRIGGER accesses_counted AFTER INSERT ON usage.accesses
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION usage.count_accesses();

CREATE INDEX sessions_by_grant ON usage.sessions (grant_id) WHERE grant_id IS NOT NULL;
CREATE INDEX accesses_by_grant ON usage.accesses (grant_id) WHERE grant_id IS NOT NULL;
