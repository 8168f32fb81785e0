-- The web console (services/api/console): sign-in sessions and one-time sign-in links.
--
-- Like api_keys these are not tenant rows: they are how the tenant is found, so they sit outside
-- row-level security and are only read by their hash. Neither the session id nor the link
-- token is stored: a leaked table gives no one a way in.
CREATE TABLE console_sessions (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    token_hash    bytea NOT NULL,
    user_id       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- The API key the session was opened with (NULL for a login link); revoking it ends the session.
    api_key_id    uuid REFERENCES api_keys (id) ON DELETE CASCADE,
    csrf_token    text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    ended_at      timestamptz
);
CREATE UNIQUE INDEX console_sessions_token_key ON console_sessions (token_hash);
CREATE INDEX console_sessions_user_idx ON console_sessions (user_id);
CREATE INDEX console_sessions_expiry_idx ON console_sessions (expires_at);

CREATE TABLE console_login_links (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    token_hash  bytea NOT NULL,
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);
CREATE UNIQUE INDEX console_login_links_token_key ON console_login_links (token_hash);
