//! Rare elements (workouts, correlations, summaries, clinical records): read whole, then typed.

use super::bounds::MAX_ELEMENT_BYTES;
use super::*;

impl<R: BufRead> Parser<'_, R> {
    /// Reads an element and its subtree. `Location` points (old inline
    /// routes) go straight to `locations` as compact points.
    pub(super) fn element(
        &mut self,
        e: &BytesStart<'_>,
        empty: bool,
        offset: u64,
        locations: &mut Vec<RoutePoint>,
    ) -> Res<Element> {
        let root = Element {
            name: String::from_utf8_lossy(e.name().as_ref()).into_owned(),
            attributes: self.attrs(e, offset)?,
            offset,
            ..Element::default()
        };
        if empty {
            return Ok(root);
        }
        // What the tree holds, in nodes and in bytes of names, values and text.
        let mut kept = weight(&root);
        let mut stack = vec![root];
        let mut nodes = 1usize;
        let mut buf = Vec::new();
        loop {
            let inside = stack.last().map_or("", |el| el.name.as_str());
            let (event, at) = self.next_held(&mut buf, inside)?;
            let (c, child_empty) = match event {
                Event::Start(c) => (c, false),
                Event::Empty(c) => (c, true),
                Event::Text(t) => {
                    if let Some(top) = stack.last_mut() {
                        kept += push_text(&mut top.text, &t, &mut self.scratch);
                    }
                    continue;
                }
                Event::GeneralRef(r) => {
                    let raw = [b"&".as_slice(), &r, b";"].concat();
                    if let Some(top) = stack.last_mut() {
                        kept += push_text(&mut top.text, &raw, &mut self.scratch);
                    }
                    continue;
                }
                Event::End(_) => {
                    let Some(done) = stack.pop() else {
                        return Err(self.truncated("element"));
                    };
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(done),
                        None => return Ok(done),
                    }
                    continue;
                }
                Event::Eof => {
                    let inside = stack.last().map(|el| el.name.clone()).unwrap_or_default();
                    return Err(self.truncated(&inside));
                }
                _ => continue,
            };
            nodes += 1;
            let too_large = nodes > MAX_ELEMENT_NODES || kept > MAX_ELEMENT_BYTES;
            if c.name().as_ref() == b"Location" && !too_large {
                let attrs = self.attrs(&c, at)?;
                match location_point(&attrs) {
                    Some(p) => locations.push(p),
                    None => self.skip(SkipReason::InvalidRoutePoint, "Location", at, "")?,
                }
                if !child_empty {
                    self.skip_subtree(false)?;
                }
                continue;
            }
            if too_large {
                let name = stack.first().map(|el| el.name.clone()).unwrap_or_default();
                self.skip(SkipReason::ElementTooLarge, "element", offset, &name)?;
                // Drop the rest of the element, keeping the document in step.
                if !child_empty {
                    self.skip_subtree(false)?;
                }
                // Close every element still open, up to and including the root.
                for _ in 0..stack.len() {
                    self.skip_subtree(false)?;
                }
                let mut root = stack.swap_remove(0);
                root.children.clear();
                return Ok(root);
            }
            let child = Element {
                name: String::from_utf8_lossy(c.name().as_ref()).into_owned(),
                attributes: self.attrs(&c, at)?,
                offset: at,
                ..Element::default()
            };
            kept += weight(&child);
            if child_empty {
                if let Some(parent) = stack.last_mut() {
                    parent.children.push(child);
                }
            } else {
                stack.push(child);
            }
        }
    }

    pub(super) fn workout(
        &mut self,
        el: Element,
        locations: Vec<RoutePoint>,
    ) -> Res<Option<Workout>> {
        let offset = el.offset;
        let Some(activity_type) = el.attr("workoutActivityType").map(str::to_string) else {
            self.skip(
                SkipReason::MissingAttribute,
                "Workout",
                offset,
                "workoutActivityType",
            )?;
            return Ok(None);
        };
        let (Some(start), Some(end)) = (
            required_date(&el, "startDate"),
            required_date(&el, "endDate"),
        ) else {
            let detail = format!(
                "{activity_type} startDate={:?} endDate={:?}",
                el.attr("startDate"),
                el.attr("endDate")
            );
            self.skip(SkipReason::InvalidDate, "Workout", offset, &detail)?;
            return Ok(None);
        };
        let duration_s = self.measure(&el, "duration", "durationUnit", units::seconds_per)?;
        let total_distance_m =
            self.measure(&el, "totalDistance", "totalDistanceUnit", units::metres_per)?;
        let total_energy_kcal = self.measure(
            &el,
            "totalEnergyBurned",
            "totalEnergyBurnedUnit",
            units::kcal_per,
        )?;
        let mut workout = Workout {
            activity_type,
            source_name: el.attr("sourceName").unwrap_or_default().to_string(),
            source_version: el.attr("sourceVersion").map(str::to_string),
            device: el
                .attr("device")
                .map(|d| strip_device_pointer(d).to_string()),
            created: self.date(&el, "creationDate"),
            start,
            end,
            duration_s,
            total_distance_m,
            total_energy_kcal,
            metadata: Vec::new(),
            events: Vec::new(),
            statistics: Vec::new(),
            activities: Vec::new(),
            routes: Vec::new(),
            route_points: locations,
            records: Vec::new(),
            extra: Vec::new(),
            offset,
        };
        self.stats.route_points += workout.route_points.len() as u64;
        for child in el.children {
            self.workout_child(&mut workout, child, None)?;
        }
        Ok(Some(workout))
    }

    pub(super) fn workout_child(
        &mut self,
        w: &mut Workout,
        child: Element,
        activity: Option<usize>,
    ) -> Res<()> {
        match child.name.as_str() {
            "MetadataEntry" => {
                let meta = meta_of(&child);
                match activity.and_then(|i| w.activities.get_mut(i)) {
                    Some(a) => a.metadata.push(meta),
                    None => w.metadata.push(meta),
                }
            }
            "WorkoutEvent" => {
                let Some(date) = required_date(&child, "date") else {
                    let detail = format!("WorkoutEvent date={:?}", child.attr("date"));
                    return self.skip(
                        SkipReason::InvalidDate,
                        "WorkoutEvent",
                        child.offset,
                        &detail,
                    );
                };
                w.events.push(WorkoutEvent {
                    activity,
                    kind: child.attr("type").unwrap_or_default().to_string(),
                    date,
                    duration_s: self.measure(
                        &child,
                        "duration",
                        "durationUnit",
                        units::seconds_per,
                    )?,
                    metadata: child
                        .children
                        .iter()
                        .filter(|c| c.name == "MetadataEntry")
                        .map(meta_of)
                        .collect(),
                });
            }
            "WorkoutStatistics" => {
                let stat = WorkoutStatistic {
                    activity,
                    kind: child.attr("type").unwrap_or_default().to_string(),
                    start: self.date(&child, "startDate"),
                    end: self.date(&child, "endDate"),
                    sum: self.number(&child, "sum")?,
                    minimum: self.number(&child, "minimum")?,
                    average: self.number(&child, "average")?,
                    maximum: self.number(&child, "maximum")?,
                    unit: child.attr("unit").map(str::to_string),
                };
                w.statistics.push(stat);
            }
            "WorkoutRoute" => self.route(w, child)?,
            "WorkoutActivity" if activity.is_none() => {
                let index = w.activities.len();
                w.activities.push(WorkoutActivity {
                    uuid: child.attr("uuid").map(str::to_string),
                    activity_type: child.attr("workoutActivityType").map(str::to_string),
                    start: self.date(&child, "startDate"),
                    end: self.date(&child, "endDate"),
                    duration_s: self.measure(
                        &child,
                        "duration",
                        "durationUnit",
                        units::seconds_per,
                    )?,
                    metadata: Vec::new(),
                });
                for grandchild in child.children {
                    self.workout_child(w, grandchild, Some(index))?;
                }
            }
            "Record" => w.records.push(nested_record(&child)),
            _ => w.extra.push(child),
        }
        Ok(())
    }

    pub(super) fn route(&mut self, w: &mut Workout, el: Element) -> Res<()> {
        let mut info = RouteInfo {
            source_name: el.attr("sourceName").map(str::to_string),
            start: self.date(&el, "startDate"),
            end: self.date(&el, "endDate"),
            file: None,
            file_loaded: false,
            metadata: Vec::new(),
        };
        for child in &el.children {
            match child.name.as_str() {
                "MetadataEntry" => info.metadata.push(meta_of(child)),
                "FileReference" => info.file = child.attr("path").map(str::to_string),
                _ => {}
            }
        }
        if let (Some(file), Some(routes)) = (info.file.clone(), self.routes.as_mut()) {
            match routes.load(&file, &mut w.route_points) {
                RouteLoad::Loaded { points, invalid } => {
                    info.file_loaded = true;
                    self.stats.route_files += 1;
                    self.stats.route_points += points as u64;
                    for _ in 0..invalid {
                        self.skip(SkipReason::InvalidRoutePoint, "trkpt", el.offset, &file)?;
                    }
                }
                RouteLoad::Missing => {
                    self.skip(
                        SkipReason::RouteFileMissing,
                        "WorkoutRoute",
                        el.offset,
                        &file,
                    )?;
                }
                RouteLoad::Invalid(message) => {
                    let detail = format!("{file}: {message}");
                    self.skip(
                        SkipReason::InvalidRouteFile,
                        "WorkoutRoute",
                        el.offset,
                        &detail,
                    )?;
                }
            }
        }
        w.routes.push(info);
        Ok(())
    }

    pub(super) fn correlation(&mut self, el: Element) -> Res<Option<Correlation>> {
        let offset = el.offset;
        let Some(kind) = el.attr("type").map(str::to_string) else {
            self.skip(SkipReason::MissingAttribute, "Correlation", offset, "type")?;
            return Ok(None);
        };
        let (Some(start), Some(end)) = (
            required_date(&el, "startDate"),
            required_date(&el, "endDate"),
        ) else {
            let detail = format!("{kind} startDate={:?}", el.attr("startDate"));
            self.skip(SkipReason::InvalidDate, "Correlation", offset, &detail)?;
            return Ok(None);
        };
        Ok(Some(Correlation {
            kind,
            source_name: el.attr("sourceName").unwrap_or_default().to_string(),
            source_version: el.attr("sourceVersion").map(str::to_string),
            device: el
                .attr("device")
                .map(|d| strip_device_pointer(d).to_string()),
            created: self.date(&el, "creationDate"),
            start,
            end,
            metadata: el
                .children
                .iter()
                .filter(|c| c.name == "MetadataEntry")
                .map(meta_of)
                .collect(),
            records: el
                .children
                .iter()
                .filter(|c| c.name == "Record")
                .map(nested_record)
                .collect(),
            offset,
        }))
    }

    pub(super) fn activity_summary(&mut self, el: &Element) -> Res<Option<ActivitySummary>> {
        let Some(day) = el.attr("dateComponents").and_then(parse_date) else {
            let detail = format!("dateComponents={:?}", el.attr("dateComponents"));
            self.skip(
                SkipReason::InvalidDate,
                "ActivitySummary",
                el.offset,
                &detail,
            )?;
            return Ok(None);
        };
        let move_minutes = match self.number(el, "appleMoveTime")? {
            Some(v) => Some(v),
            None => self.number(el, "appleMoveMinutes")?,
        };
        let move_minutes_goal = match self.number(el, "appleMoveTimeGoal")? {
            Some(v) => Some(v),
            None => self.number(el, "appleMoveMinutesGoal")?,
        };
        Ok(Some(ActivitySummary {
            day,
            active_energy: self.number(el, "activeEnergyBurned")?,
            active_energy_goal: self.number(el, "activeEnergyBurnedGoal")?,
            active_energy_unit: el.attr("activeEnergyBurnedUnit").map(str::to_string),
            move_minutes,
            move_minutes_goal,
            exercise_minutes: self.number(el, "appleExerciseTime")?,
            exercise_minutes_goal: self.number(el, "appleExerciseTimeGoal")?,
            stand_hours: self.number(el, "appleStandHours")?,
            stand_hours_goal: self.number(el, "appleStandHoursGoal")?,
            offset: el.offset,
        }))
    }
}

/// Appends text to an element's (up to 64 KiB of it); returns the bytes added.
fn push_text(text: &mut String, raw: &[u8], scratch: &mut String) -> usize {
    const MAX_TEXT: usize = 64 * 1024;
    if text.len() >= MAX_TEXT {
        return 0;
    }
    let piece = match decode_into(raw, scratch) {
        Ok(_) => scratch.trim(),
        Err(_) => return 0,
    };
    text.push_str(piece);
    piece.len()
}

/// Bytes an element holds of its own: name, attributes, text.
fn weight(el: &Element) -> usize {
    let attributes: usize = el.attributes.iter().map(|(k, v)| k.len() + v.len()).sum();
    el.name.len() + attributes + el.text.len()
}

fn meta_of(el: &Element) -> Meta {
    Meta {
        key: el.attr("key").unwrap_or_default().to_string(),
        value: el.attr("value").unwrap_or_default().to_string(),
    }
}

fn nested_record(el: &Element) -> NestedRecord {
    NestedRecord {
        kind: el.attr("type").unwrap_or_default().to_string(),
        unit: el.attr("unit").map(str::to_string),
        value: el.attr("value").map(str::to_string),
        start: el.attr("startDate").and_then(Timestamp::parse),
        end: el.attr("endDate").and_then(Timestamp::parse),
        metadata: el
            .children
            .iter()
            .filter(|c| c.name == "MetadataEntry")
            .map(meta_of)
            .collect(),
    }
}

/// An old-style inline `<Location date latitude longitude altitude …/>`.
fn location_point(attrs: &[(String, String)]) -> Option<RoutePoint> {
    let get = |k: &str| attrs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let num = |k: &str| get(k).and_then(|v| parse_number(v).ok());
    let at = Timestamp::parse(get("date")?)?;
    let (lat, lon) = (num("latitude")?, num("longitude")?);
    if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
        return None;
    }
    Some(RoutePoint {
        at_ms: at.utc * 1000,
        lat,
        lon,
        elevation_m: num("altitude"),
        speed_mps: num("speed"),
        course_deg: num("course"),
        h_acc_m: num("horizontalAccuracy"),
        v_acc_m: num("verticalAccuracy"),
    })
}

/// A date without which the element is skipped (the skip says why).
fn required_date(el: &Element, name: &str) -> Option<Timestamp> {
    el.attr(name).and_then(Timestamp::parse)
}
