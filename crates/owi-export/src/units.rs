//! Unit conversion for the few quantities the preview normalises: workout
//! distance (metres), energy (kilocalories) and duration (seconds).

/// Metres in one `unit` of length, for the units HealthKit writes.
pub fn metres_per(unit: &str) -> Option<f64> {
    Some(match unit {
        "m" => 1.0,
        "km" => 1000.0,
        "cm" => 0.01,
        "mm" => 0.001,
        "mi" => 1609.344,
        "yd" => 0.9144,
        "ft" => 0.3048,
        "in" => 0.0254,
        _ => return None,
    })
}

/// Kilocalories in one `unit` of energy. HealthKit's `Cal` is the food
/// calorie (a kilocalorie); `cal` is the small one.
pub fn kcal_per(unit: &str) -> Option<f64> {
    Some(match unit {
        "kcal" | "Cal" => 1.0,
        "cal" => 0.001,
        "kJ" => 1.0 / 4.184,
        "J" => 1.0 / 4184.0,
        _ => return None,
    })
}

/// Seconds in one `unit` of time.
pub fn seconds_per(unit: &str) -> Option<f64> {
    Some(match unit {
        "s" | "sec" => 1.0,
        "ms" => 0.001,
        "min" => 60.0,
        "hr" | "h" => 3600.0,
        "d" | "day" => 86_400.0,
        _ => return None,
    })
}

/// Parses a decimal the way the exports write them; NaN and infinities are
/// not values.
pub fn parse_number(s: &str) -> Result<f64, NumberError> {
    let t = s.trim();
    if t.is_empty() {
        return Err(NumberError::Empty);
    }
    match t.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        Ok(_) => Err(NumberError::NotFinite),
        Err(_) => Err(NumberError::Invalid),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumberError {
    Empty,
    NotFinite,
    Invalid,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(parse_number("74"), Ok(74.0));
        assert_eq!(parse_number(" 0.12 "), Ok(0.12));
        assert_eq!(parse_number(""), Err(NumberError::Empty));
        assert_eq!(parse_number("nan"), Err(NumberError::NotFinite));
        assert_eq!(parse_number("NaN"), Err(NumberError::NotFinite));
        assert_eq!(parse_number("inf"), Err(NumberError::NotFinite));
        assert_eq!(parse_number("12,5"), Err(NumberError::Invalid));
        assert_eq!(parse_number("abc"), Err(NumberError::Invalid));
    }

    #[test]
    fn conversions() {
        assert_eq!(
            metres_per("mi").map(|f| (0.4971749504535062 * f).round()),
            Some(800.0)
        );
        assert_eq!(kcal_per("kJ").map(|f| (4184.0 * f).round()), Some(1000.0));
        assert_eq!(seconds_per("min"), Some(60.0));
        assert_eq!(metres_per("furlong"), None);
    }
}
