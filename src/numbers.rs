//! Value parsers for numeric options, shared by `pixelcnn` and `trainer`:
//! a wrong value gets the option's range in words (clap adds the option's
//! name), and a negative one is read as a value, not as a flag.

/// A whole number of at least 1 (counts, sizes, threads).
pub fn at_least_one(s: &str) -> Result<usize, String> {
    match s.trim().parse::<i128>() {
        Ok(n) if n < 1 => Err(format!("must be at least 1, got {n}")),
        _ => whole(s),
    }
}

/// [`at_least_one`] as a `u64`.
pub fn at_least_one_u64(s: &str) -> Result<u64, String> {
    at_least_one(s).map(|n| n as u64)
}

/// A whole number, 0 or more.
pub fn whole(s: &str) -> Result<usize, String> {
    match s.trim().parse::<i128>() {
        Ok(n) if n < 0 => Err(format!("must be 0 or more, got {n}")),
        Ok(n) => usize::try_from(n).map_err(|_| format!("is too large: {n}")),
        Err(_) => Err(format!("must be a whole number, got {s:?}")),
    }
}

/// A sampling temperature: a positive finite number.
pub fn temperature(s: &str) -> Result<f32, String> {
    match s.trim().parse::<f32>() {
        Ok(t) if t.is_finite() && t > 0.0 => Ok(t),
        _ => Err(format!(
            "must be a positive number (1 samples as trained, below 1 sharper, above 1 more \
             varied), got {s}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_said_in_words() {
        assert_eq!(at_least_one("3"), Ok(3));
        assert_eq!(at_least_one("-1").unwrap_err(), "must be at least 1, got -1");
        assert_eq!(at_least_one("0").unwrap_err(), "must be at least 1, got 0");
        assert!(at_least_one("1e3").unwrap_err().contains("whole number"));
        assert!(at_least_one("99999999999999999999999").unwrap_err().contains("too large"));
        assert_eq!(whole("0"), Ok(0));
        assert_eq!(whole("-2").unwrap_err(), "must be 0 or more, got -2");
        assert_eq!(temperature("0.5"), Ok(0.5));
        for bad in ["-1", "0", "NaN", "inf", "warm"] {
            assert!(
                temperature(bad).unwrap_err().starts_with("must be a positive number"),
                "{bad}"
            );
        }
    }
}
