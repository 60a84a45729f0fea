//! Words for counts in messages.

/// `n` and `noun`, plural unless `n` is 1: "1 image", "3 images".
pub fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn one_is_singular_and_the_rest_plural() {
        assert_eq!(super::count(1, "image"), "1 image");
        assert_eq!(super::count(0, "image"), "0 images");
        assert_eq!(super::count(12, "sample"), "12 samples");
    }
}
