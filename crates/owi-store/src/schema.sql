-- The local store, version 1. Instants are Unix seconds (UTC) with the
-- offset they were recorded in (`tz`, minutes east of UTC) beside them;
-- `day` columns are days since 1970-01-01 of the local calendar date.
-- Text that repeats (types, sources, devices, units, metadata keys, category
-- values) is interned in `strings`.

CREATE TABLE exports (
    id            INTEGER PRIMARY KEY,
    fingerprint   TEXT,              -- xxh3-128 of the XML; NULL until read through
    quick_key     TEXT NOT NULL,     -- size + head/tail hash of the file, for instant recognition
    source_path   TEXT NOT NULL,
    xml_name      TEXT NOT NULL,
    file_size     INTEGER NOT NULL,
    xml_bytes     INTEGER NOT NULL,
    locale        TEXT,
    export_date   INTEGER,
    export_tz     INTEGER,
    me_json       TEXT,
    state         TEXT NOT NULL CHECK (state IN ('complete', 'partial')),
    error         TEXT,              -- why a partial export stopped
    stats_json    TEXT NOT NULL,     -- the reader's counts (unknown elements, repairs, …)
    started_at    INTEGER NOT NULL,
    seconds       REAL NOT NULL
);

CREATE TABLE strings (
    id   INTEGER PRIMARY KEY,
    text TEXT NOT NULL UNIQUE
);

-- What records share: their type, source, device and unit. Rows are
-- narrow because they only point here.
CREATE TABLE series (
    id                INTEGER PRIMARY KEY,
    export_id         INTEGER NOT NULL,
    type_id           INTEGER NOT NULL,
    source_id         INTEGER NOT NULL,
    source_version_id INTEGER,
    device_id         INTEGER,
    unit_id           INTEGER
);

CREATE TABLE records (
    id            INTEGER PRIMARY KEY,
    series_id     INTEGER NOT NULL,
    start         INTEGER NOT NULL,
    duration      INTEGER NOT NULL,   -- end − start, seconds
    created_delay INTEGER,            -- creationDate − end, seconds
    tz            INTEGER NOT NULL,
    value         REAL,               -- quantities
    value_id      INTEGER,            -- category values, interned
    -- MetadataEntry pairs packed as `key_id U+001F value U+001E …`: both
    -- separators are characters XML forbids, so no value can contain them.
    metadata      TEXT
);

-- HeartRateVariabilityMetadataList / InstantaneousBeatsPerMinute.
CREATE TABLE record_beats (
    record_id INTEGER NOT NULL,
    at_ms     INTEGER NOT NULL,
    bpm       REAL NOT NULL
);

CREATE TABLE correlations (
    id           INTEGER PRIMARY KEY,
    export_id    INTEGER NOT NULL,
    type_id      INTEGER NOT NULL,
    source_id    INTEGER NOT NULL,
    start        INTEGER NOT NULL,
    end          INTEGER NOT NULL,
    tz           INTEGER NOT NULL,
    json         TEXT NOT NULL        -- metadata and nested records
);

CREATE TABLE workouts (
    id             INTEGER PRIMARY KEY,
    export_id      INTEGER NOT NULL,
    activity_type  TEXT NOT NULL,
    source         TEXT NOT NULL,
    source_version TEXT,
    device         TEXT,
    created        INTEGER,
    start          INTEGER NOT NULL,
    end            INTEGER NOT NULL,
    tz             INTEGER NOT NULL,
    duration_s     REAL NOT NULL,
    distance_m     REAL,
    energy_kcal    REAL,
    hr_min         REAL,
    hr_avg         REAL,
    hr_max         REAL,
    time_zone      TEXT,
    route_points   INTEGER NOT NULL,
    route_file     TEXT,              -- routes.file
    extra_json     TEXT                -- zone groups, nested records, routes' metadata
);

CREATE TABLE workout_activities (
    workout_id    INTEGER NOT NULL,
    idx           INTEGER NOT NULL,
    uuid          TEXT,
    activity_type TEXT,
    start         INTEGER,
    end           INTEGER,
    duration_s    REAL
);

CREATE TABLE workout_statistics (
    workout_id INTEGER NOT NULL,
    activity   INTEGER,              -- workout_activities.idx, NULL for the workout itself
    type       TEXT NOT NULL,
    start      INTEGER,
    end        INTEGER,
    sum        REAL,
    minimum    REAL,
    average    REAL,
    maximum    REAL,
    unit       TEXT
);

CREATE TABLE workout_events (
    workout_id INTEGER NOT NULL,
    activity   INTEGER,
    type       TEXT NOT NULL,
    at         INTEGER NOT NULL,
    tz         INTEGER NOT NULL,
    duration_s REAL
);

CREATE TABLE workout_metadata (
    workout_id INTEGER NOT NULL,
    activity   INTEGER,
    key        TEXT NOT NULL,
    value      TEXT NOT NULL
);

-- Route files (GPX) and old inline `Location` routes, one row each, their
-- points packed (see `route_blob.rs`): routes are only ever read whole.
CREATE TABLE routes (
    export_id INTEGER NOT NULL,
    file      TEXT NOT NULL,          -- `/workout-routes/….gpx`, or `#workout-{id}` for inline points
    points    INTEGER NOT NULL,
    data      BLOB NOT NULL
);

CREATE TABLE activity_summaries (
    export_id             INTEGER NOT NULL,
    day                   INTEGER NOT NULL,
    active_energy         REAL,
    active_energy_goal    REAL,
    active_energy_unit    TEXT,
    move_minutes          REAL,
    move_minutes_goal     REAL,
    exercise_minutes      REAL,
    exercise_minutes_goal REAL,
    stand_hours           REAL,
    stand_hours_goal      REAL
);

-- ClinicalRecord, Audiogram, VisionPrescription, kept whole.
CREATE TABLE elements (
    export_id INTEGER NOT NULL,
    name      TEXT NOT NULL,
    date      INTEGER,
    json      TEXT NOT NULL
);

-- Aggregates computed during the ingest pass, so the preview never scans records.
CREATE TABLE type_sources (
    export_id   INTEGER NOT NULL,
    type_id     INTEGER NOT NULL,
    source_id   INTEGER NOT NULL,
    unit_id     INTEGER,
    count       INTEGER NOT NULL,
    first_start INTEGER NOT NULL,
    last_start  INTEGER NOT NULL,
    first_tz    INTEGER NOT NULL,
    last_tz     INTEGER NOT NULL
);

-- Records left out (unparseable value or date), per type.
CREATE TABLE skipped_types (
    export_id INTEGER NOT NULL,
    type_id   INTEGER NOT NULL,
    count     INTEGER NOT NULL
);

CREATE TABLE devices (
    export_id INTEGER NOT NULL,
    device_id INTEGER NOT NULL,
    count     INTEGER NOT NULL
);

-- Per type, source and local day: sums for cumulative types (for category
-- types such as sleep, seconds of the counted values), min/max for all.
CREATE TABLE daily (
    export_id INTEGER NOT NULL,
    type_id   INTEGER NOT NULL,
    source_id INTEGER NOT NULL,
    day       INTEGER NOT NULL,
    count     INTEGER NOT NULL,
    sum       REAL NOT NULL,
    min       REAL,
    max       REAL,
    PRIMARY KEY (export_id, type_id, day, source_id)
) WITHOUT ROWID;

CREATE TABLE skips (
    export_id    INTEGER NOT NULL,
    reason       TEXT NOT NULL,
    element      TEXT NOT NULL,
    count        INTEGER NOT NULL,
    first_offset INTEGER NOT NULL,
    example      TEXT NOT NULL
);

CREATE INDEX workouts_by_export ON workouts (export_id, start);
CREATE INDEX workout_activities_by_workout ON workout_activities (workout_id);
CREATE INDEX workout_statistics_by_workout ON workout_statistics (workout_id);
CREATE INDEX workout_events_by_workout ON workout_events (workout_id);
CREATE INDEX workout_metadata_by_workout ON workout_metadata (workout_id);
CREATE INDEX routes_by_file ON routes (export_id, file);
CREATE INDEX exports_by_key ON exports (quick_key);
CREATE INDEX series_by_type ON series (export_id, type_id);
CREATE INDEX type_sources_by_export ON type_sources (export_id);
