-- Version 5: what an upload should leave on the server.
--
-- Some servers never report on an import (Open Wearables 0.6 says nothing
-- about S3 uploads): what the export should leave there is kept per
-- attempt, so a later `owi status` can find the data and mark the upload
-- imported. `expected` is JSON: items, workouts ([start, end] UTC
-- seconds), samples, span.
CREATE TABLE upload_expectations (
    batch     TEXT PRIMARY KEY,
    expected  TEXT NOT NULL
) WITHOUT ROWID;
