-- A voice stream claims (consumes) a grant when it opens. The claim key makes the
-- claim idempotent: nng resends a request after a broken connection, and the resend
-- must find the grant its first attempt consumed rather than be refused.
ALTER TABLE auth.grants ADD COLUMN claim_key text UNIQUE;
