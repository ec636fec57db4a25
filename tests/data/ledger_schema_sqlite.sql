-- index ix_generation_episode on generation
CREATE INDEX ix_generation_episode ON generation (episode, panel);

-- index ix_generation_job_key on generation
CREATE INDEX ix_generation_job_key ON generation (job_key);

-- index ix_generation_provider_created on generation
CREATE INDEX ix_generation_provider_created ON generation (provider, created_at);

-- index ix_generation_run on generation
CREATE INDEX ix_generation_run ON generation (run_id);

-- index ix_key_inputs_job on key_inputs
CREATE INDEX ix_key_inputs_job ON key_inputs (phase, name, episode, at);

-- index ix_run_episode on run
CREATE INDEX ix_run_episode ON run (episode, started_at);

-- index sqlite_autoindex_alert_1 on alert
None;

-- index sqlite_autoindex_artifact_1 on artifact
None;

-- index sqlite_autoindex_build_stamp_1 on build_stamp
None;

-- index sqlite_autoindex_generation_1 on generation
None;

-- index sqlite_autoindex_generation_2 on generation
None;

-- index sqlite_autoindex_key_inputs_1 on key_inputs
None;

-- index sqlite_autoindex_panel_score_1 on panel_score
None;

-- index sqlite_autoindex_panel_take_1 on panel_take
None;

-- index sqlite_autoindex_run_1 on run
None;

-- index ux_generation_request on generation
CREATE UNIQUE INDEX ux_generation_request ON generation (provider, request_id);

-- table alert on alert
CREATE TABLE alert (
                id INTEGER PRIMARY KEY,
                topic TEXT NOT NULL UNIQUE,
                message TEXT NOT NULL,
                created_at TIMESTAMP NOT NULL
            );

-- table artifact on artifact
CREATE TABLE artifact (
                job_key TEXT NOT NULL,
                name TEXT NOT NULL,
                sha256 TEXT NOT NULL,
                media_type TEXT NOT NULL,
                size INTEGER NOT NULL,
                created_at TIMESTAMP NOT NULL,
                PRIMARY KEY (job_key, name)
            );

-- table budget on budget
CREATE TABLE budget (
                id INTEGER PRIMARY KEY,
                amount_micro INTEGER NOT NULL CHECK (amount_micro >= 0),
                source TEXT NOT NULL,
                after_generation_id INTEGER NOT NULL,
                set_at TIMESTAMP NOT NULL
            );

-- table build_stamp on build_stamp
CREATE TABLE build_stamp (
                path TEXT PRIMARY KEY,
                sha256 TEXT NOT NULL,
                size INTEGER NOT NULL,
                mtime_ns INTEGER NOT NULL,
                ctime_ns INTEGER NOT NULL,
                inode INTEGER NOT NULL,
                at TIMESTAMP NOT NULL
            );

-- table generation on generation
CREATE TABLE generation (
                id INTEGER PRIMARY KEY,
                idempotency_key TEXT NOT NULL UNIQUE,
                job_key TEXT NOT NULL,
                phase TEXT NOT NULL,
                name TEXT NOT NULL,
                episode INTEGER,
                panel TEXT,
                take INTEGER NOT NULL DEFAULT 1,
                attempt INTEGER NOT NULL DEFAULT 1,
                provider TEXT NOT NULL,
                model TEXT NOT NULL,
                estimate_model TEXT,
                status TEXT NOT NULL CHECK (status IN
                    ('reserved','submitted','completed','failed','unknown','cancelled')),
                estimate_micro INTEGER NOT NULL DEFAULT 0 CHECK (estimate_micro >= 0),
                held_micro INTEGER NOT NULL DEFAULT 0 CHECK (held_micro >= 0),
                reported_micro INTEGER,
                computed_micro INTEGER,
                actual_micro INTEGER,
                actual_source TEXT,
                would_cost_micro INTEGER,
                request_id TEXT,
                error TEXT,
                output_sha256 TEXT,
                created_at TIMESTAMP NOT NULL,
                submitted_at TIMESTAMP,
                finished_at TIMESTAMP, run_id TEXT, poll_url TEXT, failure TEXT, sent_at TIMESTAMP, route INTEGER, skipped TEXT, payload_digest TEXT, payload_match TEXT, quality TEXT,
                UNIQUE (job_key, take, attempt)
            );

-- table key_inputs on key_inputs
CREATE TABLE "key_inputs" (
                job_key TEXT NOT NULL,
                episode INTEGER NOT NULL,
                phase TEXT NOT NULL,
                name TEXT NOT NULL,
                panel TEXT,
                track TEXT NOT NULL CHECK (track IN ('draft', 'preview', 'final')),
                inputs TEXT NOT NULL,
                at TIMESTAMP NOT NULL,
                PRIMARY KEY (job_key, episode)
            );

-- table panel_score on panel_score
CREATE TABLE panel_score (
                track TEXT NOT NULL CHECK (track IN ('draft', 'preview', 'final')),
                episode INTEGER NOT NULL,
                panel TEXT NOT NULL,
                take INTEGER NOT NULL CHECK (take >= 1),
                character TEXT NOT NULL,
                scorer TEXT NOT NULL,
                job_key TEXT NOT NULL,
                value REAL CHECK (value IS NULL OR (value >= 0 AND value <= 1)),
                evidence TEXT NOT NULL DEFAULT '{}',
                note TEXT NOT NULL DEFAULT '',
                created_at TIMESTAMP NOT NULL,
                PRIMARY KEY (track, episode, panel, take, character, scorer)
            );

-- table panel_take on panel_take
CREATE TABLE "panel_take" (
                track TEXT NOT NULL CHECK (track IN ('draft', 'preview', 'final')),
                episode INTEGER NOT NULL,
                panel TEXT NOT NULL,
                take INTEGER NOT NULL CHECK (take >= 1),
                job_key TEXT NOT NULL,
                status TEXT NOT NULL CHECK (status IN ('pending review', 'approved', 'retake', 'rejected', 'not picked')),
                note TEXT,
                created_at TIMESTAMP NOT NULL,
                updated_at TIMESTAMP NOT NULL,
                PRIMARY KEY (track, episode, panel, take)
            );

-- table review_event on review_event
CREATE TABLE review_event (
                id INTEGER PRIMARY KEY,
                track TEXT NOT NULL,
                episode INTEGER NOT NULL,
                panel TEXT NOT NULL,
                take INTEGER NOT NULL,
                action TEXT NOT NULL,
                note TEXT,
                at TIMESTAMP NOT NULL
            );

-- table run on run
CREATE TABLE run (
                id TEXT PRIMARY KEY,
                episode INTEGER NOT NULL,
                provider TEXT NOT NULL,
                quality TEXT CHECK (quality IS NULL OR quality IN ('preview', 'final')),
                started_at TIMESTAMP NOT NULL,
                finished_at TIMESTAMP,
                outcome TEXT
            );

