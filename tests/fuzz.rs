//! Property tests (fuzzing) of the readers: the IDX parsers and the config parser return an
//! error or a value for any input, never panic, and never trust a header's counts.

use d2l_mlp::config::TrainConfig;
use d2l_mlp::data::{PIXELS, encode_images, encode_labels, parse_images, parse_labels};
use proptest::prelude::*;
use std::path::Path;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn idx_images_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        if let Ok(px) = parse_images(&bytes, Path::new("fuzz")) {
            prop_assert_eq!(px.len() + 16, bytes.len());
        }
    }

    #[test]
    fn idx_labels_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        if let Ok(l) = parse_labels(&bytes, Path::new("fuzz")) {
            prop_assert!(l.iter().all(|&x| x < 10));
        }
    }

    /// Valid headers with mutated counts and dimensions: lying headers are errors.
    #[test]
    fn idx_images_mutated_headers(n in 0u32..8, claim in any::<u32>(), rows in 0u32..64, cols in 0u32..64) {
        let mut b = encode_images(&vec![7u8; n as usize * PIXELS]);
        b[4..8].copy_from_slice(&claim.to_be_bytes());
        b[8..12].copy_from_slice(&rows.to_be_bytes());
        b[12..16].copy_from_slice(&cols.to_be_bytes());
        let ok = parse_images(&b, Path::new("fuzz")).is_ok();
        prop_assert_eq!(ok, claim == n && rows == 28 && cols == 28);
    }

    #[test]
    fn idx_labels_mutated_counts(labels in proptest::collection::vec(0u8..12, 0..300), claim in any::<u32>()) {
        let mut b = encode_labels(&labels);
        b[4..8].copy_from_slice(&claim.to_be_bytes());
        let ok = parse_labels(&b, Path::new("fuzz")).is_ok();
        prop_assert_eq!(ok, claim as usize == labels.len() && labels.iter().all(|&l| l < 10));
    }

    #[test]
    fn config_any_text(text in "\\PC{0,200}") {
        if let Ok(c) = TrainConfig::from_toml_str(&text, "fuzz.toml") {
            prop_assert!(c.validate().is_ok());
        }
    }

    /// TOML-shaped input with the real keys and arbitrary values.
    #[test]
    fn config_real_keys_any_values(
        key in prop::sample::select(vec!["epochs", "lr", "batch_size", "seed", "hidden", "activation", "init_std", "shuffle", "bogus"]),
        value in prop::sample::select(vec!["0", "-1", "1e308", "nan", "-inf", "\"relu\"", "[]", "[0]", "[1, 2]", "true", "18446744073709551616", "{}", "\"\""]),
    ) {
        let text = format!("{key} = {value}\n");
        match TrainConfig::from_toml_str(&text, "fuzz.toml") {
            Ok(c) => prop_assert!(c.validate().is_ok()),
            Err(e) => {
                let m = e.to_string();
                prop_assert!(m.starts_with("fuzz.toml"));
                prop_assert!(!m.contains('\n'));
            }
        }
    }
}
