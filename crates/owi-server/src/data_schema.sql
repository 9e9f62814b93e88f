-- Imported data, in its own file: an import holds one write transaction
-- for its whole run (all or nothing), and that must not block the API's
-- own writes (users, jobs, events) in server.sqlite.

CREATE TABLE workouts (
    id              TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL,
    source          TEXT NOT NULL,
    type            TEXT NOT NULL,
    start           INTEGER NOT NULL,
    end             INTEGER NOT NULL,
    zone_offset     INTEGER NOT NULL,   -- minutes east of UTC
    duration_s      REAL NOT NULL,
    device          TEXT,
    calories_kcal   REAL,
    distance_m      REAL,
    hr_min          REAL,
    hr_avg          REAL,
    hr_max          REAL,
    UNIQUE (user_id, source, start, end)
);

CREATE TABLE samples (
    user_id     TEXT NOT NULL,
    source      TEXT NOT NULL,
    series_type TEXT NOT NULL,
    recorded_at INTEGER NOT NULL,
    zone_offset INTEGER NOT NULL,
    value       REAL NOT NULL,
    unit        TEXT,
    PRIMARY KEY (user_id, source, series_type, recorded_at)
) WITHOUT ROWID;

CREATE INDEX workouts_by_user ON workouts (user_id, start);
CREATE INDEX samples_by_time ON samples (user_id, recorded_at);
