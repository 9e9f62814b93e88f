-- Version 2: a workout event's MetadataEntry pairs (lap length, swim
-- stroke style, …), as a JSON array of {"key", "value"}.
ALTER TABLE workout_events ADD COLUMN metadata_json TEXT;
